//! How the process's allocator hands memory back: the one allocator setting strata makes.
//!
//! glibc's malloc serves blocks of 128 KiB and more with their own mappings, but raises that threshold
//! to the size of each such block freed (up to 32 MiB). strata's readers allocate and free buffers of
//! 256 KiB to 4 MiB all the time (checked compressed spans, decompressed pieces); once the threshold has
//! risen past them they come from the heap, whose free space fragments across threads and is not given
//! back. A fixed threshold keeps every such buffer in its own mapping, returned when it is freed:
//! `strata sbom` on the 283 MB image of docs/BENCHMARKS-sbom.md peaks at about 63 MB instead of 80 MB,
//! for a few percent more time.

/// Blocks at least this large get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 << 10;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] (nothing elsewhere), before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; it is called before any other thread exists, with a
    // parameter and value glibc documents. A refusal (return 0) leaves the default, which is harmless.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
