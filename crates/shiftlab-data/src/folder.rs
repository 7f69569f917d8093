//! Folder layouts: torchvision's ImageFolder (`<class>/<file>`, as ImageNet's val set), split
//! layouts of it (`<split>/<class>/<file>`, or one folder per split given by the user) and
//! ImageNet-C (`<corruption>/<severity>/<class>/<file>`).
//!
//! Ordering follows torchvision so that label indices agree with it: class names are the
//! directory names sorted byte-wise (over several splits, their sorted union); files under a
//! class are walked recursively, directories in sorted order and file names sorted within each.
//! Ids are the input-relative paths with `/` (`<split>/` first when there are several splits).
//! Files that are not images (by torchvision's IMG_EXTENSIONS, case-insensitive), files outside
//! a class folder and names that are not UTF-8 are rejected, not silently skipped. A root that
//! would be read with split names as its classes is an error saying what to do instead.

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
pub(crate) const MAX_DEPTH: usize = 32;

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

/// Folder names read as split names (matched case-insensitively; the split keeps the folder's
/// name), in the order their splits enter the table.
pub const SPLIT_NAMES: [&str; 4] = ["train", "val", "validation", "test"];

fn split_rank(name: &str) -> Option<usize> {
    let lower = name.to_lowercase();
    SPLIT_NAMES.iter().position(|s| *s == lower)
}

/// One split's ImageFolder: `dir/<class>/**/<image>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitDir {
    pub split: String,
    pub dir: PathBuf,
}

/// Opens an ImageFolder tree. With `split`, `root` is one split's `<class>/**/<image>`. Without,
/// a root whose folders are all split names ([`SPLIT_NAMES`]) is a split layout
/// (`<split>/<class>/**/<image>`, as Hugging Face's imagefolder reads it) opened as
/// [`open_splits`] would; any other root is one split named `test`.
pub fn open_imagefolder(root: &Path, split: Option<&str>) -> Result<Source, DataError> {
    let top = list(root)?;
    let split_layout = !top.dirs.is_empty() && top.dirs.iter().all(|d| split_rank(d).is_some());
    if split.is_some() || !split_layout {
        return open_one(root, top, split.unwrap_or("test"));
    }
    let mut names = top.dirs.clone();
    names.sort_by_key(|d| (split_rank(d), d.clone()));
    let splits: Vec<SplitDir> = names
        .into_iter()
        .map(|d| SplitDir {
            dir: root.join(&d),
            split: d,
        })
        .collect();
    let mut source = open_split_dirs(&splits, Some(root))?;
    let strays = stray(&top, "", "split").into_iter().map(Ok);
    source.entries = Box::new(strays.chain(source.entries));
    Ok(source)
}

/// One split's tree: classes are `root`'s folders.
fn open_one(root: &Path, top: Listing, split: &str) -> Result<Source, DataError> {
    if top.dirs.is_empty() {
        return Err(DataError::layout(
            root,
            "no class folders (expected <class>/<image files>)",
        ));
    }
    refuse_split_layout(root, &top)?;
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
        notes: Vec::new(),
    })
}

/// "Classes" that are all split names with folders inside are a split layout read as one split:
/// the table would get the split names as its classes.
fn refuse_split_layout(dir: &Path, top: &Listing) -> Result<(), DataError> {
    let nested = |d: &String| list(&dir.join(d)).is_ok_and(|l| !l.dirs.is_empty());
    if !top
        .dirs
        .iter()
        .all(|d| split_rank(d).is_some() && nested(d))
    {
        return Ok(());
    }
    let msg = format!(
        "its class folders ({}) are split names with class folders inside: a split layout \
         (<split>/<class>/<image>); ingest it without --split to get those splits, or give \
         each split as --input NAME=DIR",
        top.dirs.join(", ")
    );
    Err(DataError::layout(dir, msg))
}

/// Opens several splits' ImageFolders as one table: classes are the sorted union of their
/// class folders (a class missing from a split is a note), ids and paths `<split>/<class>/..`,
/// splits in the order given. Split names must be distinct (ingest checks the inputs).
pub fn open_splits(splits: &[SplitDir]) -> Result<Source, DataError> {
    open_split_dirs(splits, None)
}

/// [`open_splits`]; `layout_root` is the root of a detected split layout, for its messages.
fn open_split_dirs(splits: &[SplitDir], layout_root: Option<&Path>) -> Result<Source, DataError> {
    let mut listings = Vec::with_capacity(splits.len());
    for s in splits {
        let l = list(&s.dir)?;
        if l.dirs.is_empty() {
            return Err(no_class_folders(s, layout_root));
        }
        refuse_split_layout(&s.dir, &l)?;
        listings.push(l);
    }
    let classes: BTreeSet<&String> = listings.iter().flat_map(|l| &l.dirs).collect();
    let class_names: Vec<String> = classes.into_iter().cloned().collect();
    let notes = partial_classes(splits, &listings, &class_names);
    let mut entries = Vec::new();
    for (s, l) in splits.iter().zip(&listings) {
        let target = Target {
            split: s.split.clone(),
            corruption: None,
            severity: None,
        };
        let mut these = stray(l, "", "class");
        for class in &l.dirs {
            let label = class_names
                .binary_search(class)
                .map_err(|_| DataError::Other(format!("class {class} vanished")))?;
            these.extend(class_entries(&s.dir, class, label as i64, &target)?);
        }
        entries.extend(these.into_iter().map(|e| under(&s.split, e)));
    }
    let total = entries.len() as u64;
    Ok(Source {
        class_names,
        total: Some(total),
        entries: Box::new(entries.into_iter().map(Ok)),
        notes,
    })
}

fn no_class_folders(s: &SplitDir, layout_root: Option<&Path>) -> DataError {
    let msg = match layout_root {
        Some(root) => format!(
            "no class folders, but {} looks like a split layout (its folders are all split \
             names, so they are read as <split>/<class>/<image>): put each split's images in \
             class folders, or, if these folders are your classes, ingest {} as one split \
             with --split NAME",
            root.display(),
            root.display()
        ),
        None => format!(
            "no class folders in split {} (expected {}/<class>/<image files>)",
            s.split,
            s.dir.display()
        ),
    };
    DataError::layout(&s.dir, msg)
}

/// A note for every class whose folder some splits lack.
fn partial_classes(splits: &[SplitDir], listings: &[Listing], classes: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    for c in classes {
        let (has, lacks): (Vec<_>, Vec<_>) = splits
            .iter()
            .zip(listings)
            .partition(|(_, l)| l.dirs.binary_search(c).is_ok());
        if lacks.is_empty() {
            continue;
        }
        let names = |v: Vec<(&SplitDir, &Listing)>| {
            v.iter()
                .map(|(s, _)| s.split.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        notes.push(format!(
            "class folder '{c}' is in split {} but not in {} (the class list is the union over \
             the splits)",
            names(has),
            names(lacks)
        ));
    }
    notes
}

/// `entry` with `prefix/` before its id and image path (or its rejected item's name).
fn under(prefix: &str, entry: Entry) -> Entry {
    match entry {
        Entry::Item(mut item) => {
            item.id = join(prefix, &item.id);
            item.path = Some(item.id.clone());
            Entry::Item(item)
        }
        Entry::Reject(mut r) => {
            r.item = join(prefix, &r.item);
            Entry::Reject(r)
        }
    }
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
        notes: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_folders_are_walked_down_to_the_depth_limit_and_deeper_ones_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        // cat/d0/.../d31: 32 levels below the class folder, the deepest allowed.
        let mut deep = dir.path().join("cat");
        for i in 0..MAX_DEPTH {
            deep.push(format!("d{i}"));
        }
        std::fs::create_dir_all(deep.join("too-deep")).expect("mkdir");
        let png = crate::testutil::png_claiming(1, 1);
        std::fs::write(deep.join("a.png"), &png).expect("write");
        std::fs::write(deep.join("too-deep").join("b.png"), &png).expect("write");
        let source = open_imagefolder(dir.path(), None).expect("opens");
        let mut items = Vec::new();
        let mut rejects = Vec::new();
        for e in source.entries {
            match e.expect("entry") {
                Entry::Item(i) => items.push(i.path.unwrap_or_default()),
                Entry::Reject(r) => rejects.push(r),
            }
        }
        assert_eq!(items.len(), 1);
        assert!(items[0].ends_with("d31/a.png"), "{items:?}");
        assert_eq!(rejects.len(), 1);
        let r = &rejects[0];
        assert!(r.item.ends_with("d31/too-deep"), "{}", r.item);
        assert!(
            r.reason
                .to_string()
                .contains("nested deeper than 32 levels"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn relative_names_join_with_a_slash_below_the_root_only() {
        assert_eq!(join("", "cat"), "cat");
        assert_eq!(join("train", "cat"), "train/cat");
        assert_eq!(join("train/cat", "a.png"), "train/cat/a.png");
    }
}
