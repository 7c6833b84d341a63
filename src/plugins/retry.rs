//! `RetryError`, the way a plugin asks the server to try its work again:
//! `error(RetryError("rate limited"))`, the Lua form of the original's
//! `throw new RetryError(...)`.
//!
//! `RetryError(message)` returns a host error value; raising it travels
//! through Lua untouched (the traceback handler keeps host errors as they
//! are), so the host finds it in the error chain and can tell a request to
//! retry from any other failure. Only onEvent, exportEvents and the job
//! retries act on it; elsewhere it is an ordinary error.

use mlua::{Lua, Value};

/// What `RetryError(message)` raises.
#[derive(Debug, Clone, thiserror::Error)]
#[error("RetryError: {0}")]
pub struct RetryRequested(pub String);

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let f = lua.create_function(|_, message: Option<String>| {
        let message = message.unwrap_or_else(|| "retry requested".into());
        Ok(Value::Error(Box::new(mlua::Error::external(RetryRequested(message)))))
    })?;
    lua.globals().raw_set("RetryError", f)
}

/// The message of the RetryError raised inside this error, if any.
pub fn requested(err: &mlua::Error) -> Option<String> {
    super::sandbox::chain(err).find_map(|e| match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<RetryRequested>().map(|r| r.0.clone()),
        _ => None,
    })
}
