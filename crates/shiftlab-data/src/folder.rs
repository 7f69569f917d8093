//! Folder layouts: torchvision's ImageFolder (`<class>/<file>`, as ImageNet's val set) and
//! ImageNet-C (`<corruption>/<severity>/<class>/<file>`).
//!
//! Ordering follows torchvision so that label indices agree with it: class names are the
//! directory names sorted byte-wise; files under a class are walked recursively, directories in
//! sorted order and file names sorted within each. Ids are the input-relative paths with `/`.
//! Files that are not images (by torchvision's IMG_EXTENSIONS, case-insensitive), files outside
//! a class folder and names that are not UTF-8 are rejected, not silently skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Reason, Rejected};
use crate::source::{Entry, Item, Payload, Source};

/// torchvision's `IMG_EXTENSIONS`.
pub const IMG_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp",
];

/// Whether a file name has an accepted image extension; otherwise the reason.
pub fn check_extension(name: &str) -> Result<(), Reason> {
    let ext = Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    match ext {
        Some(e) if IMG_EXTENSIONS.contains(&e.as_str()) => Ok(()),
        Some(e) => Err(Reason::NotAnImage(format!(".{e}"))),
        None => Err(Reason::NotAnImage("none".into())),
    }
}

/// Deepest folder nesting walked (symlinks are followed, as in torchvision, so loops are possible).
const MAX_DEPTH: usize = 32;

/// A directory listing split into sorted sub-directories and files (UTF-8 names only).
struct Listing {
    dirs: Vec<String>,
    files: Vec<String>,
    bad_names: Vec<String>,
}

fn list(dir: &Path) -> Result<Listing, DataError> {
    let mut l = Listing {
        dirs: Vec::new(),
        files: Vec::new(),
        bad_names: Vec::new(),
    };
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            l.bad_names
                .push(entry.file_name().to_string_lossy().into_owned());
            continue;
        };
        // Follows symlinks, as torchvision does.
        if entry.path().is_dir() {
            l.dirs.push(name);
        } else {
            l.files.push(name);
        }
    }
    l.dirs.sort();
    l.files.sort();
    Ok(l)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Rejections for stray files and non-UTF-8 names in a directory that should hold only folders.
fn stray(l: &Listing, rel: &str, what: &str) -> Vec<Entry> {
    let files = l.files.iter().map(|f| {
        Reason::Misplaced(format!("a file where {what} folders belong")).with(join(rel, f))
    });
    let names = l
        .bad_names
        .iter()
        .map(|n| Reason::Misplaced("name is not valid UTF-8".into()).with(join(rel, n)));
    files.chain(names).collect()
}

impl Reason {
    fn with(self, item: String) -> Entry {
        Entry::Reject(Rejected::new(item, self))
    }
}

/// Where the items of one class folder go.
#[derive(Clone)]
struct Target {
    split: String,
    corruption: Option<String>,
    severity: Option<i32>,
}

/// All entries under one class folder, in torchvision's order.
fn class_entries(root: &Path, rel: &str, label: i64, t: &Target) -> Result<Vec<Entry>, DataError> {
    let mut dirs = vec![rel.to_string()];
    let mut walked = Vec::new();
    let mut out = Vec::new();
    while let Some(d) = dirs.pop() {
        let l = list(&root.join(&d))?;
        for s in &l.dirs {
            let sub = join(&d, s);
            if sub.matches('/').count() > MAX_DEPTH {
                let why = format!("folder nested deeper than {MAX_DEPTH} levels (symlink loop?)");
                out.push(Reason::Misplaced(why).with(sub));
            } else {
                dirs.push(sub);
            }
        }
        walked.push((d, l));
    }
    walked.sort_by(|a, b| a.0.cmp(&b.0));
    for (d, l) in walked {
        for n in &l.bad_names {
            out.push(Reason::Misplaced("name is not valid UTF-8".into()).with(join(&d, n)));
        }
        for f in l.files {
            let id = join(&d, &f);
            out.push(match check_extension(&f) {
                Err(reason) => reason.with(id),
                Ok(()) => Entry::Item(Item {
                    payload: Payload::File(root.join(&id)),
                    path: Some(id.clone()),
                    id,
                    split: t.split.clone(),
                    label,
                    corruption: t.corruption.clone(),
                    severity: t.severity,
                }),
            });
        }
    }
    Ok(out)
}

/// Opens an ImageFolder tree: `root/<class>/**/<image>`.
pub fn open_imagefolder(root: &Path, split: &str) -> Result<Source, DataError> {
    let top = list(root)?;
    if top.dirs.is_empty() {
        return Err(DataError::layout(
            root,
            "no class folders (expected <class>/<image files>)",
        ));
    }
    let mut entries = stray(&top, "", "class");
    let target = Target {
        split: split.to_string(),
        corruption: None,
        severity: None,
    };
    for (label, class) in top.dirs.iter().enumerate() {
        entries.extend(class_entries(root, class, label as i64, &target)?);
    }
    let total = entries.len() as u64;
    Ok(Source {
        class_names: top.dirs,
        total: Some(total),
        entries: Box::new(entries.into_iter().map(Ok)),
    })
}

/// The (corruption, severity) folders of an ImageNet-C tree, with stray files found on the way.
type Groups = (Vec<(String, i32, String)>, Vec<Entry>);

fn imagenet_c_groups(root: &Path) -> Result<Groups, DataError> {
    let top = list(root)?;
    let mut strays = stray(&top, "", "corruption");
    let mut groups = Vec::new();
    for c in &top.dirs {
        let l = list(&root.join(c))?;
        strays.extend(stray(&l, c, "severity"));
        let mut sev = Vec::new();
        for s in &l.dirs {
            let n = s.parse::<i32>().map_err(|_| {
                DataError::layout(
                    &root.join(c).join(s),
                    "severity folder name is not an integer",
                )
            })?;
            sev.push((n, s.clone()));
        }
        sev.sort();
        groups.extend(sev.into_iter().map(|(n, s)| (c.clone(), n, join(c, &s))));
    }
    if groups.is_empty() {
        return Err(DataError::layout(
            root,
            "no <corruption>/<severity>/ folders",
        ));
    }
    Ok((groups, strays))
}

/// Opens an ImageNet-C tree; classes are the sorted union over all severity folders.
pub fn open_imagenet_c(root: &Path, split: &str) -> Result<Source, DataError> {
    let (groups, strays) = imagenet_c_groups(root)?;
    let mut classes = BTreeSet::new();
    for (_, _, rel) in &groups {
        classes.extend(list(&root.join(rel))?.dirs);
    }
    let class_names: Vec<String> = classes.into_iter().collect();
    let names = class_names.clone();
    let (root, split): (PathBuf, String) = (root.to_path_buf(), split.to_string());
    // Class folders are listed lazily, one severity folder at a time.
    let lazy = groups.into_iter().flat_map(move |(c, sev, rel)| {
        let t = Target {
            split: split.clone(),
            corruption: Some(c),
            severity: Some(sev),
        };
        group_entries(&root, &rel, &names, &t).unwrap_or_else(|e| vec![Err(e)])
    });
    let entries = strays.into_iter().map(Ok).chain(lazy);
    Ok(Source {
        class_names,
        total: None,
        entries: Box::new(entries),
    })
}

fn group_entries(
    root: &Path,
    rel: &str,
    classes: &[String],
    t: &Target,
) -> Result<Vec<Result<Entry, DataError>>, DataError> {
    let l = list(&root.join(rel))?;
    let mut out: Vec<_> = stray(&l, rel, "class").into_iter().map(Ok).collect();
    for class in &l.dirs {
        let label = classes
            .binary_search(class)
            .map_err(|_| DataError::Other(format!("class {class} vanished")))?;
        out.extend(
            class_entries(root, &join(rel, class), label as i64, t)?
                .into_iter()
                .map(Ok),
        );
    }
    Ok(out)
}
