//! Inputs for strata's criterion benchmarks: synthetic layers built deterministically, shaped like a
//! distribution's `/usr` (many small files, some large ones, text-like content that compresses ~3×).

use strata_fixtures::{BuiltLayer, Compression, LayerBuilder};

/// A layer of about `mib` MiB of uncompressed content, compressed with `compression`.
pub fn usr_like_layer(mib: usize, compression: Compression) -> BuiltLayer {
    let mut layer = LayerBuilder::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let words: Vec<&[u8]> = [
        &b"lib"[..],
        b"share",
        b"doc",
        b"copyright",
        b"GNU",
        b"General",
        b"Public",
        b"License",
        b"0x7f",
        b"ELF",
        b"static",
        b"const",
        b"return",
        b"include",
        b"usr",
        b"bin",
        b"\n",
        b"  ",
        b"{",
        b"}",
    ]
    .to_vec();
    let mut total = 0usize;
    let mut n = 0usize;
    while total < mib << 20 {
        if n.is_multiple_of(64) {
            layer.dir(format!("usr/share/pkg{}/", n / 64));
        }
        // Mostly small files, one in 200 large.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = if n % 200 == 199 {
            2 << 20
        } else {
            (state % 24_000) as usize + 200
        };
        let mut content = Vec::with_capacity(size);
        while content.len() < size {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            content.extend_from_slice(words[(state % words.len() as u64) as usize]);
            if state.is_multiple_of(7) {
                content.extend_from_slice(&state.to_le_bytes()[..3]);
            }
            content.push(b' ');
        }
        content.truncate(size);
        total += size;
        layer.file(format!("usr/share/pkg{}/file{n}", n / 64), content);
        n += 1;
    }
    // A generated layer is always well-formed; failing here is a bug in the fixture generator.
    #[allow(clippy::expect_used)]
    layer
        .build(compression)
        .expect("building a synthetic layer")
}
