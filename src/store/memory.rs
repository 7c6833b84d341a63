//! Plugin storage kept in memory: for `phs plugins test`, which runs with no
//! database, and as the base of replay's dry-run overlay.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{PluginStorage, Result, StoreError};

#[derive(Default)]
pub struct MemoryStorage {
    values: Mutex<HashMap<(i64, String), String>>,
}

impl MemoryStorage {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<(i64, String), String>) -> T) -> T {
        f(&mut self.values.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl PluginStorage for MemoryStorage {
    async fn storage_get(&self, id: i64, key: &str) -> Result<Option<String>> {
        Ok(self.with(|m| m.get(&(id, key.to_string())).cloned()))
    }

    async fn storage_set(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.with(|m| m.insert((id, key.to_string()), value.to_string()));
        Ok(())
    }

    async fn storage_del(&self, id: i64, key: &str) -> Result<bool> {
        Ok(self.with(|m| m.remove(&(id, key.to_string())).is_some()))
    }

    async fn storage_set_if_absent(&self, id: i64, key: &str, value: &str) -> Result<bool> {
        Ok(self.with(|m| match m.entry((id, key.to_string())) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(value.to_string());
                true
            }
        }))
    }

    async fn storage_incr(&self, id: i64, key: &str, by: i64) -> Result<i64> {
        self.with(|m| {
            let slot = m.entry((id, key.to_string())).or_insert_with(|| "0".into());
            let n: i64 = slot
                .parse()
                .map_err(|_| StoreError::Invalid(format!("storage key `{key}` does not hold an integer")))?;
            let n = n + by;
            *slot = n.to_string();
            Ok(n)
        })
    }
}
