//! Plugins: PostHog plugins written in Lua, run per plugin config (team x
//! plugin) in a sandboxed state.
//!
//! - [`manifest`]: plugin.json and config validation;
//! - [`source`]: a plugin's files;
//! - [`sandbox`]: the locked-down Lua state and its limits;
//! - [`pattern`] and [`strings`]: Lua pattern matching with a time budget;
//! - [`api`]: the globals and `meta` a plugin sees;
//! - [`vm`]: one config's state, its capabilities and hook calls, with
//!   [`convert`] for values and [`proxy`] for processEvent's lazy event;
//! - [`runner`]: every team's loaded configs and the processEvent chain;
//! - [`jobs`]: `meta.jobs`, enqueueing a plugin's jobs;
//! - [`delivery`]: how onEvent, exportEvents, jobs and tasks are called and
//!   retried, for the worker and `phs plugins test` alike;
//! - [`retry`]: the `RetryError` global; [`clock`]: `os.now()`;
//! - [`logs`]: plugin log entries, and reading them back; [`log_writer`]:
//!   the runner's batched writes of them;
//! - [`registry`]: installing plugins and managing their configs, and
//!   [`listing`] for what `phs plugins list` shows;
//! - [`fixtures`]: the fixture runner behind `phs plugins test`, and
//!   [`scenario`] for fixtures of the async hooks.

pub mod api;
pub mod archive;
pub mod clock;
pub mod convert;
pub mod delivery;
pub mod error_rate;
pub mod fetch;
pub mod fixtures;
pub mod geoip;
pub mod jobs;
pub mod listing;
pub mod log_writer;
pub mod logs;
pub mod manifest;
pub mod pattern;
pub mod proxy;
pub mod registry;
pub mod retry;
pub mod runner;
pub mod sandbox;
pub mod scaffold;
pub mod scenario;
pub mod secrets;
pub mod source;
pub mod strings;
pub mod thread_cpu;
pub mod vm;

pub use api::Context;
pub use manifest::Manifest;
pub use proxy::Edit;
pub use sandbox::Limits;
pub use source::PluginSource;
pub use vm::{Budget, CallError, Capabilities, PluginVm, ProcessOutcome, Processed};
