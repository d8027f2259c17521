//! The merged view of a stack of layers: [`MergedView`].
//!
//! The rules are the OCI image-spec layer rules, evaluated top-down and lazily:
//!
//! * a **whiteout** of `P` in layer `L` hides `P` and everything under it in the layers below `L`;
//! * an **opaque** marker on directory `D` in layer `L` hides the lower layers' contents of `D` (layer `L`'s
//!   own entries under `D` stay visible, wherever they are in the tar);
//! * a marker never hides entries of its own layer, and is never returned;
//! * a **non-directory** entry at `A` in layer `L` hides everything under `A` in `L` and below (a type
//!   change), and an entry at `P` in an upper layer replaces `P` below (directories merge their children;
//!   the upper directory's metadata wins);
//! * a layer with entries under `D` but no entry for `D` has `D` as an **implicit directory**: it takes the
//!   metadata of the directory `D` of the layers below when there is one, and is otherwise synthesized
//!   (mode 0755, owned by 0:0, see [`EntryRef::is_implicit`]);
//! * the **root** directory's metadata is that of the topmost layer with an entry for it (`./` in its tar),
//!   as for any directory; with none, it is synthesized like an implicit directory ([`MergedView::root`]).

use std::collections::BTreeMap;

use crate::entry::EntryKind;
use crate::error::Result;
use crate::reader::{EntryRef, LayerIndex};

/// A stack of layer indexes seen as one tree.
#[derive(Debug)]
pub struct MergedView {
    layers: Vec<LayerIndex>,
}

/// A visible entry of the merged view and the layer it comes from.
#[derive(Debug, Clone, Copy)]
pub struct MergedEntry<'a> {
    /// Index of the layer in [`MergedView::layers`] (0 = bottom). For a synthesized directory, the top
    /// layer that implies it.
    pub layer: usize,
    /// The entry.
    pub entry: EntryRef<'a>,
}

/// The proper ancestors of a normalised path, from the top: `a`, `a/b` for `a/b/c`.
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .filter_map(|(i, _)| path.get(..i))
}

/// What one layer holds at one name of a directory.
#[derive(Default, Clone, Copy)]
struct LayerChild<'a> {
    real: Option<EntryRef<'a>>,
    whiteout: bool,
    implicit: Option<EntryRef<'a>>,
}

#[derive(Clone, Copy)]
enum Slot<'a> {
    /// Resolved: this entry.
    Visible(MergedEntry<'a>),
    /// An implicit directory: a real directory lower down would give its metadata.
    Pending(MergedEntry<'a>),
    /// Deleted by a whiteout.
    Hidden,
}

/// What a layer's ancestors of a path mean for that path.
enum Ancestry {
    /// Some ancestor is a non-directory in this layer: the path does not exist here or below.
    Blocked,
    /// Lower layers are hidden (if true) by a whiteout or opaque marker on an ancestor.
    Open(bool),
}

impl MergedView {
    /// The view of `layers`, bottom layer first.
    pub fn new(layers: Vec<LayerIndex>) -> MergedView {
        MergedView { layers }
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[LayerIndex] {
        &self.layers
    }

    /// Gives the layers back.
    pub fn into_layers(self) -> Vec<LayerIndex> {
        self.layers
    }

    /// The visible entry at the normalised `path` and its layer. The root (`b""`) is not looked up here (it
    /// is always a directory: see [`MergedView::root`]); paths that are not normalised are not found.
    pub fn lookup(&self, path: &[u8]) -> Result<Option<(usize, EntryRef<'_>)>> {
        self.lookup_in(path, self.layers.len())
    }

    /// The root directory: the root entry (`./`) of the topmost layer that has one, or, when no layer has
    /// one, a synthesized directory (mode 0755, owned by 0:0, mtime 0, [`EntryRef::is_implicit`]) of layer 0.
    /// Its name and parent are empty.
    pub fn root(&self) -> Result<MergedEntry<'_>> {
        for (layer, index) in self.layers.iter().enumerate().rev() {
            if let Some(entry) = index.root()? {
                return Ok(MergedEntry { layer, entry });
            }
        }
        Ok(MergedEntry {
            layer: 0,
            entry: EntryRef::implicit(b"", b""),
        })
    }

    /// The entry at `path` as seen from layer `layer`: the merged view of layers `0..=layer` only. This is
    /// how a hardlink in layer `layer` resolves its target (in its own layer or a lower one).
    pub fn lookup_below(&self, path: &[u8], layer: usize) -> Result<Option<(usize, EntryRef<'_>)>> {
        self.lookup_in(path, layer.saturating_add(1))
    }

    fn ancestry(
        index: &LayerIndex,
        paths: impl Iterator<Item = impl AsRef<[u8]>>,
    ) -> Result<Ancestry> {
        let mut hides_lower = false;
        for a in paths {
            let p = index.probe(a.as_ref())?;
            if p.real.is_some_and(|r| r.kind() != EntryKind::Dir) {
                return Ok(Ancestry::Blocked);
            }
            hides_lower |= p.marker.is_some();
        }
        Ok(Ancestry::Open(hides_lower))
    }

    /// Lookup over layers `0..top`.
    fn lookup_in(&self, path: &[u8], top: usize) -> Result<Option<(usize, EntryRef<'_>)>> {
        if path.is_empty() {
            return Ok(None);
        }
        // The topmost implicit directory at `path`, while looking for a real directory below it.
        let mut pending: Option<(usize, EntryRef<'_>)> = None;
        for l in (0..top.min(self.layers.len())).rev() {
            let Some(index) = self.layers.get(l) else {
                continue;
            };
            let mut hides_lower = match Self::ancestry(index, ancestors(path))? {
                Ancestry::Blocked => return Ok(pending),
                Ancestry::Open(h) => h,
            };
            let p = index.probe(path)?;
            if let Some(real) = p.real {
                return Ok(match pending {
                    Some(_) if real.kind() != EntryKind::Dir => pending,
                    _ => Some((l, real)),
                });
            }
            if pending.is_none() {
                let implicit = match p.marker {
                    Some(m) if m.kind() == EntryKind::Opaque => {
                        Some(EntryRef::implicit(m.parent(), m.name()))
                    }
                    _ => index.descendant_witness(path)?.map(|w| {
                        let (parent, name) = crate::entry::split_parent(w);
                        EntryRef::implicit(parent, name)
                    }),
                };
                pending = implicit.map(|e| (l, e));
            }
            hides_lower |= p.marker.is_some_and(|m| m.kind() == EntryKind::Whiteout);
            if hides_lower {
                return Ok(pending);
            }
        }
        Ok(pending)
    }

    /// The visible children of directory `dir` (`b""` for the root), sorted by name, each with its layer.
    /// Markers are never returned; implicit subdirectories are. Empty if `dir` is not a visible directory.
    pub fn readdir(&self, dir: &[u8]) -> Result<Vec<MergedEntry<'_>>> {
        let mut state: BTreeMap<&[u8], Slot<'_>> = BTreeMap::new();
        let mut here: BTreeMap<&[u8], LayerChild<'_>> = BTreeMap::new();
        let mut subdirs = Vec::new();
        let dir_itself = (!dir.is_empty()).then_some(dir);
        for (l, index) in self.layers.iter().enumerate().rev() {
            let hides_lower = match Self::ancestry(index, ancestors(dir).chain(dir_itself))? {
                Ancestry::Blocked => break,
                Ancestry::Open(h) => h,
            };
            here.clear();
            for e in index.readdir(dir)? {
                let e = e?;
                let c = here.entry(e.name()).or_default();
                match e.kind() {
                    EntryKind::Whiteout => c.whiteout = true,
                    EntryKind::Opaque => {
                        c.implicit
                            .get_or_insert(EntryRef::implicit(e.parent(), e.name()));
                    }
                    _ => c.real = Some(e),
                }
            }
            index.implied_subdirs(dir, &mut subdirs)?;
            for &(parent, name) in &subdirs {
                here.entry(name)
                    .or_default()
                    .implicit
                    .get_or_insert(EntryRef::implicit(parent, name));
            }
            for (&name, c) in &here {
                match state.get_mut(name) {
                    Some(Slot::Visible(_) | Slot::Hidden) => {}
                    Some(slot @ Slot::Pending(_)) => {
                        let Slot::Pending(pending) = *slot else {
                            continue;
                        };
                        match c.real {
                            Some(r) if r.kind() == EntryKind::Dir => {
                                *slot = Slot::Visible(MergedEntry { layer: l, entry: r })
                            }
                            Some(_) => *slot = Slot::Visible(pending),
                            None if c.whiteout => *slot = Slot::Visible(pending),
                            None => {}
                        }
                    }
                    None => {
                        let slot = match (c.real, c.implicit) {
                            (Some(r), _) => Slot::Visible(MergedEntry { layer: l, entry: r }),
                            (None, Some(i)) => {
                                let e = MergedEntry { layer: l, entry: i };
                                if c.whiteout {
                                    Slot::Visible(e)
                                } else {
                                    Slot::Pending(e)
                                }
                            }
                            (None, None) if c.whiteout => Slot::Hidden,
                            (None, None) => continue,
                        };
                        state.insert(name, slot);
                    }
                }
            }
            if hides_lower {
                break;
            }
        }
        Ok(state
            .into_values()
            .filter_map(|s| match s {
                Slot::Visible(e) | Slot::Pending(e) => Some(e),
                Slot::Hidden => None,
            })
            .collect())
    }

    /// Every visible entry, depth-first (a directory before its children), children sorted by name, with
    /// its full path.
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            view: self,
            stack: Vec::new(),
            started: false,
        }
    }
}

/// The iterator of [`MergedView::walk`].
pub struct Walk<'a> {
    view: &'a MergedView,
    stack: Vec<(Vec<u8>, std::vec::IntoIter<MergedEntry<'a>>)>,
    started: bool,
}

impl std::fmt::Debug for Walk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("depth", &self.stack.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = Result<(Vec<u8>, MergedEntry<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            match self.view.readdir(b"") {
                Ok(children) => self.stack.push((Vec::new(), children.into_iter())),
                Err(e) => return Some(Err(e)),
            }
        }
        loop {
            let (dir, children) = self.stack.last_mut()?;
            let Some(me) = children.next() else {
                self.stack.pop();
                continue;
            };
            let mut path = Vec::with_capacity(dir.len() + 1 + me.entry.name().len());
            path.extend_from_slice(dir);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(me.entry.name());
            if me.entry.kind() == EntryKind::Dir {
                match self.view.readdir(&path) {
                    Ok(sub) => self.stack.push((path.clone(), sub.into_iter())),
                    Err(e) => return Some(Err(e)),
                }
            }
            return Some(Ok((path, me)));
        }
    }
}
