//! phs-tui: the terminal dashboard behind `phs top`.
//!
//! This crate knows nothing of the pipeline. The binary polls each instance's
//! admin listener (`/_snapshot`, whose shape is [`Report`]), gathers the
//! results into a [`Snapshot`] and sends it here. Keeping the dependency
//! one-way (`phs -> phs-tui`) keeps ratatui and crossterm out of the pipeline
//! library and lets the rendering tests run without any service.
//!
//! The wire and view model is the `phs-report` crate, which the server
//! library uses without this crate; [`panels`] turns it into table rows;
//! [`app`] is state and keys; [`ui`] draws; [`term`] runs the terminal loop.

pub mod app;
pub mod panels;
pub mod term;
pub mod theme;
mod ui;

pub use phs_report::{
    Count, Instance, InstanceStatus, PartitionLag, PluginError, PluginRow, PluginState, Quantiles, Report, Snapshot,
    Worker,
};

#[cfg(test)]
mod tests;
