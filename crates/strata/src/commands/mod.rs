//! One module per subcommand, and nothing else: the argument groups they share are in `crate::args`,
//! rendering in `crate::output` and `crate::render`, the FUSE serving protocol in `crate::serve`.

pub mod cache;
pub mod cat;
pub mod check;
pub mod copy;
pub mod delete;
pub mod diff;
pub mod docs;
pub mod export;
pub mod find;
pub mod fsck;
pub mod images;
pub mod index;
pub mod inspect;
pub mod layer_store;
pub mod layers;
pub mod list_tags;
pub mod ls;
pub mod mount;
pub mod mounts;
pub mod packages;
pub mod prune;
pub mod pull;
pub mod rmi;
pub mod sbom;
pub mod sign;
pub mod umount;
pub mod unpack;
pub mod verify;
