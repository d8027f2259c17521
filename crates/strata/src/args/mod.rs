//! The argument groups commands share: the image a command opens (with the flags that choose and reach
//! it), the platform, the registry, the store and the trust policy.

pub mod image;
pub mod platform;
pub mod policy;
pub mod registry;
pub mod store;

pub use image::ImageArgs;
pub use platform::PlatformArgs;
pub use policy::PolicyArgs;
pub use registry::RegistryArgs;
pub use store::StoreArgs;
