//! `os.now()`: the wall clock in seconds since the epoch, with millisecond
//! precision, as LuaSocket's `socket.gettime()` and OpenResty's `ngx.now()`
//! give it. `os.time()` has whole seconds only, too coarse for plugins that
//! measure latency (the queue-latency plugin).

use mlua::{Lua, Table};

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let now = lua.create_function(|_, ()| Ok(chrono::Utc::now().timestamp_millis() as f64 / 1000.0))?;
    lua.globals().get::<Table>("os")?.raw_set("now", now)
}
