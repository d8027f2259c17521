//! One module per subcommand.

pub mod index;
pub mod inspect;
mod platform;
pub mod unpack;
