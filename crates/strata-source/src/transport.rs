//! The transport table: the one place an image name (`transport:rest`) is dispatched to the code that opens
//! it.

use std::path::Path;

use crate::{Error, ImageSource, Result, SourceOptions, dir, docker_archive, layout, registry};

/// Opens image `name` of a transport: `rest` is the part after `transport:`.
pub type OpenFn =
    fn(name: &str, rest: &str, options: &SourceOptions) -> Result<Box<dyn ImageSource>>;

/// One image transport.
#[derive(Clone, Copy)]
pub struct Transport {
    /// The prefix before the first `:` (`oci`, `docker`, `containers-storage`).
    pub name: &'static str,
    /// How its names are written, for help and messages (`oci:DIR[:TAG|@DIGEST]`).
    pub form: &'static str,
    /// Opens one of its names.
    pub open: OpenFn,
}

impl Transport {
    /// How its names start, as users write them: `oci:`, `docker://`.
    pub fn prefix(&self) -> String {
        if self.name == "docker" {
            "docker://".to_owned()
        } else {
            format!("{}:", self.name)
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("name", &self.name)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

/// The transports an image name may use.
#[derive(Debug, Clone)]
pub struct Transports {
    list: Vec<Transport>,
}

impl Transports {
    /// This crate's transports: `oci:`, `oci-archive:`, `docker-archive:`, `dir:`, `docker://`.
    pub fn builtin() -> Transports {
        Transports {
            list: vec![
                Transport {
                    name: "oci",
                    form: "oci:DIR[:TAG|@DIGEST]",
                    open: open_oci,
                },
                Transport {
                    name: "oci-archive",
                    form: "oci-archive:FILE[:TAG]",
                    open: open_oci,
                },
                Transport {
                    name: "docker-archive",
                    form: "docker-archive:FILE[:REPO:TAG|:@N]",
                    open: open_docker_archive,
                },
                Transport {
                    name: "dir",
                    form: "dir:DIR",
                    open: open_dir,
                },
                Transport {
                    name: "docker",
                    form: "docker://HOST[:PORT]/NAME[:TAG|@DIGEST]",
                    open: open_registry,
                },
            ],
        }
    }

    /// These transports and `transport` (replacing one of the same name).
    #[must_use]
    pub fn with(mut self, transport: Transport) -> Transports {
        self.list.retain(|t| t.name != transport.name);
        self.list.push(transport);
        self
    }

    /// The transports, in the order they were added.
    pub fn list(&self) -> &[Transport] {
        &self.list
    }

    /// The transports' prefixes, as users write them: `oci:, …, docker://`.
    pub fn known(&self) -> String {
        self.list
            .iter()
            .map(Transport::prefix)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The transport `name` uses (its prefix before the first `:`), if it is one of these.
    pub fn of(&self, name: &str) -> Option<&Transport> {
        let (transport, _) = name.split_once(':')?;
        self.list.iter().find(|t| t.name == transport)
    }

    /// Opens the image `name` (`transport:…`); `options` apply to the transports that use them.
    pub fn open(&self, name: &str, options: &SourceOptions) -> Result<Box<dyn ImageSource>> {
        let known = || self.known();
        let Some((transport, rest)) = name.split_once(':') else {
            return Err(Error::InvalidName {
                name: name.to_owned(),
                reason: format!("no transport prefix ({})", known()),
            });
        };
        match self.list.iter().find(|t| t.name == transport) {
            Some(t) => (t.open)(name, rest, options),
            None => Err(Error::UnknownTransport {
                transport: transport.to_owned(),
                known: known(),
            }),
        }
    }
}

/// Opens the image `name` (`transport:…`) of a built-in transport with the default [`SourceOptions`].
pub fn open(name: &str) -> Result<Box<dyn ImageSource>> {
    open_with(name, &SourceOptions::default())
}

/// Opens the image `name` (`transport:…`) of a built-in transport; `options` apply to the transports that
/// use them (`docker:`).
pub fn open_with(name: &str, options: &SourceOptions) -> Result<Box<dyn ImageSource>> {
    Transports::builtin().open(name, options)
}

/// The transport and the path of a name of a transport that keeps images in one file or directory:
/// `dir:PATH`, `oci:PATH[:REF]`, `oci-archive:PATH[:REF]`, `docker-archive:PATH[:REPO:TAG|@N]` (without the
/// reference part, which the policy's scopes leave out). `None` for other names.
pub fn local_path(name: &str) -> Option<(&'static str, &Path)> {
    let (transport, rest) = name.split_once(':')?;
    let path = match transport {
        "dir" => rest,
        "oci" | "oci-archive" => layout::parse_selector(rest).ok()?.0,
        "docker-archive" => docker_archive::parse_selector(rest).ok()?.0,
        _ => return None,
    };
    let transport = match transport {
        "dir" => "dir",
        "oci" => "oci",
        "oci-archive" => "oci-archive",
        _ => "docker-archive",
    };
    (!path.is_empty()).then(|| (transport, Path::new(path)))
}

fn invalid(name: &str, reason: &str) -> Error {
    Error::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

fn open_oci(name: &str, rest: &str, _: &SourceOptions) -> Result<Box<dyn ImageSource>> {
    let (path, selector) = layout::parse_selector(rest).map_err(|r| invalid(name, &r))?;
    if path.is_empty() {
        return Err(invalid(name, "empty path"));
    }
    let source = if name.starts_with("oci-archive:") {
        layout::OciLayout::open_archive(name, Path::new(path), selector)?
    } else {
        layout::OciLayout::open_dir(name, Path::new(path), selector)?
    };
    Ok(Box::new(source))
}

fn open_docker_archive(name: &str, rest: &str, _: &SourceOptions) -> Result<Box<dyn ImageSource>> {
    let (path, selector) = docker_archive::parse_selector(rest).map_err(|r| invalid(name, &r))?;
    if path.is_empty() {
        return Err(invalid(name, "empty path"));
    }
    Ok(Box::new(docker_archive::DockerArchive::open(
        name,
        Path::new(path),
        selector,
    )?))
}

fn open_dir(name: &str, rest: &str, _: &SourceOptions) -> Result<Box<dyn ImageSource>> {
    if rest.is_empty() {
        return Err(invalid(name, "empty path"));
    }
    Ok(Box::new(dir::DirSource::open(name, Path::new(rest))?))
}

fn open_registry(name: &str, rest: &str, options: &SourceOptions) -> Result<Box<dyn ImageSource>> {
    Ok(Box::new(registry::open(name, rest, options)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_err(name: &str) -> String {
        match open(name) {
            Ok(_) => panic!("{name} opened"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert!(open_err("foo:bar").contains("unknown transport \"foo\""));
        assert!(open_err("nocolon").contains("no transport"));
        assert!(open_err("oci:").contains("empty path"));
        assert!(open_err("dir:").contains("empty path"));
        assert!(open_err("docker-archive:x.tar:UPPER/case:tag").contains("invalid"));
        assert!(open_err("oci:/nonexistent/x").contains("/nonexistent/x"));
    }

    #[test]
    fn the_table_names_every_transport_and_takes_more() {
        assert!(
            open_err("foo:bar").contains("oci:, oci-archive:, docker-archive:, dir:, docker://")
        );
        fn refuse(name: &str, _: &str, _: &SourceOptions) -> Result<Box<dyn ImageSource>> {
            Err(Error::invalid(name, "refused by the test transport"))
        }
        let table = Transports::builtin().with(Transport {
            name: "test",
            form: "test:X",
            open: refuse,
        });
        match table.open("test:x", &SourceOptions::default()) {
            Ok(_) => panic!("opened"),
            Err(e) => assert!(
                e.to_string().contains("refused by the test transport"),
                "{e}"
            ),
        }
        assert_eq!(table.of("test:x").map(|t| t.form), Some("test:X"));
        assert!(table.of("nope:x").is_none());
    }
}
