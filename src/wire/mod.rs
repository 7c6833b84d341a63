//! The types every layer shares: raw messages and the producer that appends
//! them ([`message`]), what reads them ([`source`]), the capture format
//! inside them ([`captured`]), the stored event row ([`row`]) and its
//! shapes on the events topic and in plugins' async hooks ([`stored`]), and
//! the hand-off of written events to the async side ([`handoff`]). Nothing here knows
//! the pipeline, the plugins or the stores; they all know this.

pub mod captured;
pub mod handoff;
pub mod message;
pub mod row;
pub mod source;
pub mod stored;

pub use captured::CapturedEvent;
pub use handoff::Handoff;
pub use message::{Message, PartitionPosition, Positions, Producer, highest_offsets};
pub use row::{EventPerson, EventRow, SharedJson, json_text};
pub use source::Source;
