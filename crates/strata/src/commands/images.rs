//! `strata images`: the images in the store, as `podman images` lists them.

use strata_oci::ImageReference;

use crate::args::StoreArgs;
use crate::output::{human_bytes, print_json, print_raw};

/// Arguments of `strata images`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON: each image's record (as images.json has it), its size and its layers.
    #[arg(long)]
    json: bool,
}

/// Runs `strata images`.
pub fn run(args: Args, store: &StoreArgs) -> anyhow::Result<()> {
    let images = store.open()?.images()?;
    if args.json {
        return print_json(&images);
    }
    let mut out = format!(
        "{:<40} {:<12} {:<14} {:<22} {:>10}\n",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"
    );
    for image in &images {
        let id = &image.record.id[..image.record.id.len().min(12)];
        let created = image
            .record
            .created
            .get(..19)
            .unwrap_or(&image.record.created)
            .replace('T', " ");
        let size = human_bytes(image.size.max(0) as u64);
        let names: Vec<(String, String)> = if image.record.names.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            image
                .record
                .names
                .iter()
                .map(|n| match ImageReference::parse(n) {
                    Ok(r) => (r.name(), r.tag().unwrap_or("<none>").to_owned()),
                    Err(_) => (n.clone(), "<none>".into()),
                })
                .collect()
        };
        for (repo, tag) in names {
            out.push_str(&format!(
                "{repo:<40} {tag:<12} {id:<14} {created:<22} {size:>10}\n"
            ));
        }
    }
    print_raw(out.as_bytes())
}
