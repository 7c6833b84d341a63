//! `meta.geoip.locate(ip)`: MaxMind City lookups from an MMDB file read into
//! memory once per process (MMDB_FILE_LOCATION), shared by every plugin
//! config. A lookup is a few hundred nanoseconds of tree walking, so it runs
//! synchronously inside the plugin's call.
//!
//! [`writer`] builds small MMDB files, for fixtures and tests: phs ships no
//! database, and tests must not download one.

pub mod writer;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use maxminddb::{Reader, geoip2};
use mlua::{Lua, Table, Value};

use super::convert::to_lua;

#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("GeoIP database {path}: cannot read it: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("GeoIP database {what}: not a valid MaxMind DB file: {message}")]
    Invalid { what: String, message: String },
}

/// An opened MaxMind DB (City or compatible).
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    /// Where it came from, for messages.
    pub what: String,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp").field("what", &self.what).finish()
    }
}

impl GeoIp {
    pub fn open(path: &Path) -> Result<GeoIp, GeoIpError> {
        let bytes =
            std::fs::read(path).map_err(|source| GeoIpError::Read { path: path.display().to_string(), source })?;
        GeoIp::from_bytes(bytes, &path.display().to_string())
    }

    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<GeoIp, GeoIpError> {
        let reader = Reader::from_source(bytes)
            .map_err(|e| GeoIpError::Invalid { what: what.to_string(), message: e.to_string() })?;
        Ok(GeoIp { reader, what: what.to_string() })
    }

    /// The City record of an address as JSON (city, continent, country,
    /// location, postal, subdivisions, ...), or None when the database has no
    /// entry for it.
    pub fn locate(&self, ip: &str) -> Result<Option<serde_json::Value>, String> {
        let addr: IpAddr = ip.trim().parse().map_err(|_| format!("geoip.locate: `{ip}` is not an IP address"))?;
        let city: Option<geoip2::City> =
            self.reader.lookup(addr).map_err(|e| format!("geoip.locate({ip}): the database is corrupt: {e}"))?;
        Ok(city.map(|c| serde_json::to_value(c).expect("a City record serializes")))
    }
}

/// `meta.geoip`: `locate(ip)` (or `geoip:locate(ip)`) returns a City table or
/// nil; without a configured database it raises, as the original did.
pub fn table(lua: &Lua, geoip: Option<Arc<GeoIp>>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let locate = lua.create_function(move |lua, mut args: mlua::MultiValue| {
        if matches!(args.front(), Some(Value::Table(_))) {
            args.pop_front();
        }
        let ip = match args.pop_front() {
            Some(Value::String(s)) => s.to_str()?.to_string(),
            Some(Value::Nil) | None => return Ok(Value::Nil),
            Some(other) => {
                return Err(mlua::Error::runtime(format!(
                    "geoip.locate: expected an IP string, got a {}",
                    other.type_name()
                )));
            }
        };
        let Some(db) = &geoip else {
            return Err(mlua::Error::runtime(
                "geoip.locate: IP location is not available: no GeoIP database is configured (MMDB_FILE_LOCATION)",
            ));
        };
        match db.locate(&ip).map_err(mlua::Error::runtime)? {
            Some(record) => to_lua(lua, &record),
            None => Ok(Value::Nil),
        }
    })?;
    t.raw_set("locate", locate)?;
    Ok(t)
}
