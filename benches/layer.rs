//! The layer engine's one pass (verify, decompress, hash, parse) over synthetic layers, index-only.

// A benchmark aborts on a broken input; there is no caller to return an error to.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::io::Read;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata_benches::usr_like_layer;
use strata_fixtures::Compression;
use strata_layer::{LayerSpec, read_layer};
use strata_oci::Digest;

fn read_pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_layer");
    group.sample_size(10);
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let layer = usr_like_layer(64, compression);
        let spec = LayerSpec {
            digest: Digest::parse(&layer.digest).unwrap(),
            size: Some(layer.blob.len() as u64),
            media_type: layer.media_type().to_owned(),
            diff_id: Some(Digest::parse(&layer.diff_id).unwrap()),
        };
        group.throughput(Throughput::Bytes(layer.tar.len() as u64));
        group.bench_function(format!("{compression:?}"), |b| {
            b.iter(|| {
                let blob: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(layer.blob.clone()));
                let summary = read_layer(blob, &spec, &mut |e, _| {
                    black_box(e);
                    Ok(())
                })
                .unwrap();
                black_box(summary)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, read_pass);
criterion_main!(benches);
