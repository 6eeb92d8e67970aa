//! The subcommands, and what they share: the flags ([`args`]), the side-by-side clusters
//! ([`clusters`]), one measured run ([`runner`]), interleaved points ([`points`]), output.

pub mod args;
pub mod clusters;
pub mod compare;
pub mod election;
pub mod leader;
pub mod mix;
pub mod output;
pub mod points;
pub mod runner;
pub mod scale;
pub mod soak;
pub mod specs;
pub mod stragglers;
