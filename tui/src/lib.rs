//! phs-tui: the terminal dashboard behind `phs top`.
//!
//! This crate knows nothing of the pipeline. The binary polls each instance's
//! admin listener, turns what it reads into a [`Snapshot`], and hands it here.
//! Keeping the dependency one-way (`phs -> phs-tui`) keeps ratatui and crossterm
//! out of the pipeline library and lets the rendering tests run without any
//! service.
//!
//! The dashboard itself (panels, keys, rendering) arrives with the
//! observability issue; the view model is defined now so the admin listener
//! and `phs top --once --json` share one shape from the start.

pub mod snapshot;

pub use snapshot::{
    Count, Instance, InstanceStatus, PartitionLag, PluginError, PluginRow, PluginState, Quantiles, Report, Snapshot,
    Worker,
};
