//! `meta.jobs`: a plugin enqueues its own jobs on the durable queue.
//!
//! `meta.jobs.<name>(payload)` returns a request with three ways to send it:
//! `:runNow()`, `:runIn(n, unit)` and `:runAt(time)`. Units are those of the
//! original (milliseconds, seconds, minutes, hours, days, weeks, months,
//! quarters, years; singular accepted; anything else is an error). A month
//! is 30 days, a quarter 90 and a year 365 (the original's month was 30
//! weeks, a bug not kept). `runAt` takes seconds since the epoch, as
//! `os.time()` gives them, or an RFC 3339 string. Only the plugin's own
//! job names exist in `meta.jobs`; the job worker runs them (`jobs.<name>(payload, meta)`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use mlua::{Lua, Table, Value};

use super::api::{Context, method};
use super::convert::from_lua;
use super::sandbox::Deadline;
use crate::store::NewJob;

/// The `meta.jobs` table for a plugin whose jobs are `names`.
pub fn table(lua: &Lua, ctx: &Context, deadline: &Arc<Deadline>, names: &[String]) -> mlua::Result<Table> {
    let jobs = lua.create_table()?;
    for name in names {
        let (ctx, deadline, name_) = (ctx.clone(), deadline.clone(), name.clone());
        let request = lua.create_function(move |lua, payload: Value| {
            let payload = match from_lua(lua, payload)? {
                serde_json::Value::Null => serde_json::json!({}),
                p => p,
            };
            let job = Arc::new(NewJob {
                team_id: ctx.team_id,
                plugin_config_id: ctx.plugin_config_id,
                name: name_.clone(),
                payload,
                attempt: 0,
                run_at: Utc::now(),
            });
            let t = lua.create_table()?;
            let (q, j) = (ctx.jobs.clone(), job.clone());
            t.raw_set(
                "runNow",
                method(lua, &deadline, None, move |_, ()| enqueue(q.clone(), NewJob { run_at: Utc::now(), ..(*j).clone() }))?,
            )?;
            let (q, j) = (ctx.jobs.clone(), job.clone());
            t.raw_set(
                "runIn",
                method(lua, &deadline, None, move |_, (n, unit): (f64, String)| {
                    let at = run_in(n, &unit).map(|d| Utc::now() + d);
                    let (q, j) = (q.clone(), j.clone());
                    async move { enqueue(q, NewJob { run_at: at.map_err(mlua::Error::runtime)?, ..(*j).clone() }).await }
                })?,
            )?;
            let (q, j) = (ctx.jobs.clone(), job);
            t.raw_set(
                "runAt",
                method(lua, &deadline, None, move |_, at: Value| {
                    let at = run_at(&at);
                    let (q, j) = (q.clone(), j.clone());
                    async move { enqueue(q, NewJob { run_at: at.map_err(mlua::Error::runtime)?, ..(*j).clone() }).await }
                })?,
            )?;
            Ok(t)
        })?;
        jobs.raw_set(name.as_str(), request)?;
    }
    Ok(jobs)
}

async fn enqueue(queue: Arc<dyn crate::store::JobQueue>, job: NewJob) -> mlua::Result<()> {
    queue.enqueue_jobs(&[job]).await.map_err(|e| mlua::Error::runtime(format!("enqueueing the job failed: {e}")))
}

/// `runIn(n, unit)` as a duration.
pub fn run_in(n: f64, unit: &str) -> Result<chrono::Duration, String> {
    const DAY: f64 = 86_400_000.0;
    let ms = match unit.strip_suffix('s').unwrap_or(unit) {
        "millisecond" => 1.0,
        "second" => 1000.0,
        "minute" => 60_000.0,
        "hour" => 3_600_000.0,
        "day" => DAY,
        "week" => 7.0 * DAY,
        "month" => 30.0 * DAY,
        "quarter" => 90.0 * DAY,
        "year" => 365.0 * DAY,
        _ => {
            return Err(format!(
                "runIn: unknown unit `{unit}`; use milliseconds, seconds, minutes, hours, days, weeks, months, \
                 quarters or years"
            ));
        }
    };
    let total = n * ms;
    if !total.is_finite() || !(0.0..=100.0 * 365.0 * DAY).contains(&total) {
        return Err(format!("runIn: {n} {unit} is not a delay between now and 100 years"));
    }
    Ok(chrono::Duration::milliseconds(total as i64))
}

/// `runAt(time)`: seconds since the epoch (`os.time()`), or an RFC 3339 string.
pub fn run_at(at: &Value) -> Result<DateTime<Utc>, String> {
    let parsed = match at {
        Value::Integer(s) => DateTime::from_timestamp(*s, 0),
        Value::Number(s) if s.is_finite() => DateTime::from_timestamp_millis((s * 1000.0) as i64),
        Value::String(s) => DateTime::parse_from_rfc3339(&s.to_string_lossy()).ok().map(|t| t.with_timezone(&Utc)),
        _ => None,
    };
    parsed.ok_or_else(|| {
        "runAt: give the time as seconds since the epoch (os.time()) or an RFC 3339 string like \
         \"2030-01-01T00:00:00Z\""
            .to_string()
    })
}
