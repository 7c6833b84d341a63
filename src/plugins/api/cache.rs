//! `meta.cache`: the plugin config's slice of the cache (Redis or in-process),
//! every key prefixed `@plugin/{plugin_id}/{team_id}/` as in the original, so
//! no key a plugin names can reach another team's or plugin's entries.
//!
//! Plain values are JSON text (`get`/`set`/`incr`/`expire`); lists hold
//! strings (`lpush`/`lrange`/`llen`/`lrem`/`lpop`), with Redis's semantics.

use std::sync::Arc;
use std::time::Duration;

use mlua::{Lua, LuaSerdeExt, Table, Value};

use super::super::sandbox::Deadline;
use super::{Context, decode, dependency_error, encode, method};

/// Elements one `lpush` may add, as in the original.
pub const MAX_LPUSH: usize = 1000;

/// The longest TTL a plugin may give (10 years): a longer one is a mistake,
/// and one near `Duration::MAX` would overflow the in-process cache's
/// expiry instant.
pub const MAX_TTL_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;

/// A TTL in seconds from plugin code, checked (NaN, infinities and huge
/// values would panic in `Duration::from_secs_f64`).
fn checked_ttl(op: &str, secs: f64) -> mlua::Result<Duration> {
    if !(0.0..=MAX_TTL_SECONDS).contains(&secs) {
        return Err(mlua::Error::runtime(format!(
            "cache.{op}: the TTL must be a number of seconds between 0 and {MAX_TTL_SECONDS}, not {secs}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub(super) fn table(lua: &Lua, ctx: &Context, deadline: &Arc<Deadline>) -> mlua::Result<Table> {
    let prefix = Arc::new(format!("@plugin/{}/{}/", ctx.plugin_id, ctx.team_id));
    let service = ctx.cache.backend();
    let t = lua.create_table()?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "get",
        method(lua, deadline, Some(service), move |lua, (key, default): (String, Value)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            async move {
                match c.get(&k).await.map_err(dependency_error)? {
                    Some(raw) => decode(&lua, &raw),
                    None => Ok(default),
                }
            }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "set",
        method(lua, deadline, Some(service), move |lua, (key, value, ttl): (String, Value, Option<f64>)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            let text = encode(&lua, value);
            // No TTL, or 0 or less, keeps the value until it is deleted, as before.
            let ttl = ttl.filter(|s| s.is_nan() || *s > 0.0).map(|s| checked_ttl("set", s)).transpose();
            async move { c.set(&k, &text?, ttl?).await.map_err(dependency_error) }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "incr",
        method(lua, deadline, Some(service), move |_lua, (key, by): (String, Option<i64>)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            async move { c.incr(&k, by.unwrap_or(1)).await.map_err(dependency_error) }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "expire",
        method(lua, deadline, Some(service), move |_lua, (key, ttl): (String, f64)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            let ttl = checked_ttl("expire", if ttl.is_nan() { ttl } else { ttl.max(0.001) });
            async move { c.expire(&k, ttl?).await.map_err(dependency_error) }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "lpush",
        method(lua, deadline, Some(service), move |lua, (key, values): (String, Value)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            let values = list_elements(&lua, values);
            async move { c.lpush(&k, &values?).await.map_err(dependency_error) }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "lrange",
        method(lua, deadline, Some(service), move |lua, (key, start, end): (String, i64, i64)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            async move { strings(&lua, c.lrange(&k, start, end).await.map_err(dependency_error)?) }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "llen",
        method(lua, deadline, Some(service), move |_lua, key: String| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            async move { c.llen(&k).await.map_err(dependency_error) }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix.clone());
    t.raw_set(
        "lrem",
        method(lua, deadline, Some(service), move |lua, (key, count, value): (String, i64, Value)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            let value = element(&lua, value);
            async move { c.lrem(&k, count, &value?).await.map_err(dependency_error) }
        })?,
    )?;
    let (c, p) = (ctx.cache.clone(), prefix);
    t.raw_set(
        "lpop",
        method(lua, deadline, Some(service), move |lua, (key, count): (String, Option<i64>)| {
            let (c, k) = (c.clone(), format!("{p}{key}"));
            async move {
                let count = count.unwrap_or(1);
                if count < 0 {
                    return Err(mlua::Error::runtime(format!("cache.lpop: count must be 0 or more, not {count}")));
                }
                strings(&lua, c.lpop(&k, count as usize).await.map_err(dependency_error)?)
            }
        })?,
    )?;
    Ok(t)
}

/// What `lpush` takes: one value or an array of at most [`MAX_LPUSH`], each stringified.
fn list_elements(lua: &Lua, v: Value) -> mlua::Result<Vec<String>> {
    let items: Vec<Value> = match v {
        Value::Table(t) => t.sequence_values::<Value>().collect::<mlua::Result<_>>()?,
        other => vec![other],
    };
    if items.len() > MAX_LPUSH {
        return Err(mlua::Error::runtime(format!(
            "cache.lpush: at most {MAX_LPUSH} elements at a time, not {}",
            items.len()
        )));
    }
    items.into_iter().map(|v| element(lua, v)).collect()
}

/// A list element: strings as they are, anything else as JSON text.
fn element(lua: &Lua, v: Value) -> mlua::Result<String> {
    match v {
        Value::String(s) => Ok(s.to_str()?.to_string()),
        Value::Nil => Err(mlua::Error::runtime("cache list elements cannot be nil")),
        other => encode(lua, other),
    }
}

/// A Lua array of strings.
fn strings(lua: &Lua, items: Vec<String>) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, s) in items.into_iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(s)?)?;
    }
    t.set_metatable(Some(lua.array_metatable()))?;
    Ok(t)
}
