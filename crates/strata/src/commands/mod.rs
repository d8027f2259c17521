//! One module per subcommand.

pub mod cat;
pub mod check;
pub mod diff;
pub mod export;
pub mod find;
pub mod fsck;
pub mod fuse;
pub mod images;
pub mod index;
pub mod inspect;
pub mod layer_files;
pub mod layers;
pub mod list_tags;
pub mod ls;
pub mod mount;
pub mod mounts;
pub mod names;
pub mod packages;
mod platform;
pub mod prune;
pub mod pull;
mod registry_args;
pub mod rmi;
pub mod store;
pub mod umount;
pub mod unpack;
