//! The types every layer shares: raw messages and the producer that appends
//! them ([`message`]), the capture format inside them ([`captured`]), the stored event row ([`row`]), and the hand-off of
//! written events to the async side ([`handoff`]). Nothing here knows
//! the pipeline, the plugins or the stores; they all know this.

pub mod captured;
pub mod handoff;
pub mod message;
pub mod row;

pub use captured::CapturedEvent;
pub use handoff::Handoff;
pub use message::{Message, PartitionPosition, Positions, Producer, highest_offsets};
pub use row::{EventPerson, EventRow, SharedJson, json_text};
