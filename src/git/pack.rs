//! Writing a checkpoint's new objects as one packfile. A loose object is one new file, and on ext4 a new inode
//! costs far more than the bytes: ~150 µs each here, 30 ms for the 200 objects of 100 changed folders. One pack
//! is one file. libgit2's pack builder would do, but it searches for deltas and compresses at zlib's default
//! level (~12 ms for those 200 objects; level 1 still 6.5 ms). Checkpoint objects are small and mostly trees of
//! hashes, which compress poorly, so this stores them whole (zlib's stored blocks: 370 KB instead of 256 KB for
//! those 200 objects, still less disk than 200 loose files of one block each) and lets libgit2's indexer verify
//! and index the pack. `git gc` repacks them with deltas and compression later, as it does loose objects.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use flate2::{Compress, Compression, FlushCompress, Status};
use git2::{ObjectType, Odb, Oid, Repository};

fn type_code(kind: ObjectType) -> Option<u8> {
    match kind {
        ObjectType::Commit => Some(1),
        ObjectType::Tree => Some(2),
        ObjectType::Blob => Some(3),
        ObjectType::Tag => Some(4),
        _ => None,
    }
}

/// An entry's header: type and size, the size in little-endian groups of 7 bits after the first 4.
fn entry_header(code: u8, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}

/// A version 2 packfile holding `ids` (duplicates once), read from `odb`.
pub fn pack_bytes(odb: &Odb, ids: &[Oid], level: Compression) -> Result<Vec<u8>> {
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    let count = u32::try_from(unique.len()).context("too many objects for one pack")?;
    let mut out = Vec::new();
    out.extend_from_slice(b"PACK");
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    // One compressor, reset per object: setting one up allocates and clears ~256 KB of tables.
    let mut z = Compress::new(level, true);
    for id in unique {
        let object = odb.read(id).with_context(|| format!("reading object {id}"))?;
        let code = type_code(object.kind()).with_context(|| format!("object {id} has no type"))?;
        let data = object.data();
        out.extend_from_slice(&entry_header(code, data.len()));
        z.reset();
        let start = z.total_in();
        loop {
            out.reserve(data.len() / 2 + 64);
            let done = (z.total_in() - start) as usize;
            let status = z.compress_vec(&data[done..], &mut out, FlushCompress::Finish).context("compressing")?;
            if status == Status::StreamEnd {
                break;
            }
        }
    }
    let digest = sha1_smol::Sha1::from(&out).digest().bytes();
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Write `ids` into the object database as one pack (libgit2 verifies it and writes its index). Returns the
/// pack's name (`pack-<checksum>`, as libgit2 names it).
fn write_pack(repo: &Repository, odb: &Odb, ids: &[Oid], level: Compression) -> Result<String> {
    // libgit2 decides where packs go when it opens the object database: without a pack folder then, it writes
    // them elsewhere (the filesystem root) and reports success. So check before, and verify after.
    let dir = repo.commondir().join("objects/pack");
    anyhow::ensure!(dir.is_dir(), "{} is not a folder: git objects cannot be written", dir.display());
    let bytes = pack_bytes(odb, ids, level)?;
    let name = format!("pack-{}", Oid::from_bytes(&bytes[bytes.len() - 20..])?);
    let mut writer = odb.packwriter().context("opening a pack writer")?;
    writer.write_all(&bytes).with_context(|| crate::safefs::write_failure(&dir, "writing the pack"))?;
    writer.commit().with_context(|| crate::safefs::write_failure(&dir, "indexing the pack"))?;
    for ext in ["pack", "idx"] {
        let written = dir.join(format!("{name}.{ext}"));
        anyhow::ensure!(written.is_file(), "{} was not written", written.display());
    }
    Ok(name)
}

/// A pack with this many objects is merged no more: a merge then rewrites fewer than twice as many (~0.6 s
/// here at worst), and past that the packs grow in number by one per 8,000 objects.
const FULL_PACK: usize = 8_000;

/// The file (in the repository's common git folder) naming the packs muster wrote, so only those are ever
/// merged or deleted by muster.
const LIST: &str = "muster-packs";

/// Write a checkpoint's new objects as one stored (uncompressed) pack and note it as muster's.
pub fn write_objects(repo: &Repository, odb: &Odb, ids: &[Oid]) -> Result<()> {
    let name = write_pack(repo, odb, ids, Compression::none())?;
    let mut list = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(repo.commondir().join(LIST))
        .context("noting the checkpoint pack")?;
    writeln!(list, "{name}").context("noting the checkpoint pack")?;
    Ok(())
}

/// A pack's version 2 index, checked enough to read its object table; None when missing or unreadable.
fn read_index(idx: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(idx).ok()?;
    (bytes.get(..8)? == b"\xfftOc\x00\x00\x00\x02").then_some(bytes)
}

/// The number of objects in a pack: the last entry of its index's fan-out table.
fn object_count(index: &[u8]) -> Option<usize> {
    Some(u32::from_be_bytes(index.get(8 + 255 * 4..8 + 256 * 4)?.try_into().ok()?) as usize)
}

/// The object ids of a pack, from its index.
fn object_ids(index: &[u8]) -> Option<Vec<Oid>> {
    let table = index.get(8 + 256 * 4..8 + 256 * 4 + object_count(index)? * 20)?;
    table.chunks(20).map(|id| Oid::from_bytes(id).ok()).collect()
}

/// Which of the packs (object counts, smallest first) to merge so the rest, with the merged one, grow at least
/// twofold each (as `git repack --geometric=2`): each object is rewritten O(log n) times over a long history
/// and the pack count stays logarithmic. Returns how many of the smallest to merge (0 or at least 2).
pub fn geometric_split(counts: &[usize]) -> usize {
    let n = counts.len();
    if n < 2 {
        return 0;
    }
    let mut i = n - 1;
    while i > 0 && counts[i] >= 2 * counts[i - 1] {
        i -= 1;
    }
    if i == 0 {
        return 0;
    }
    let mut merged: usize = counts[..=i].iter().sum();
    let mut end = i + 1;
    while end < n && counts[end] < 2 * merged {
        merged += counts[end];
        end += 1;
    }
    end
}

/// Keep muster's packs few: one per checkpoint would slow every object lookup (libgit2 searches the packs one
/// by one: 40 ms per checkpoint after 300 of them). Merges the smallest into one, geometrically. Packs that
/// are gone (`git gc` repacked them) or full leave the list. Returns how many packs were merged.
pub fn tidy(repo: &Repository) -> Result<usize> {
    let common = repo.commondir().to_path_buf();
    let list_path = common.join(LIST);
    let Ok(text) = std::fs::read_to_string(&list_path) else { return Ok(0) };
    let dir = common.join("objects/pack");
    let listed: std::collections::BTreeSet<&str> = text.lines().filter(|l| l.starts_with("pack-")).collect();
    let mut packs: Vec<(String, Vec<u8>, usize)> = listed
        .into_iter()
        .filter_map(|name| {
            let index = read_index(&dir.join(format!("{name}.idx")))?;
            let count = object_count(&index)?;
            Some((name.to_string(), index, count))
        })
        .collect();
    packs.sort_by_key(|(_, _, count)| *count);
    // Packs that are big enough stay as they are, so one merge rewrites a bounded number of objects.
    packs.retain(|(_, _, count)| *count < FULL_PACK);
    let counts: Vec<usize> = packs.iter().map(|(_, _, count)| *count).collect();
    let split = geometric_split(&counts);
    let mut names: Vec<String> = packs.iter().map(|(n, _, _)| n.clone()).collect();
    if split >= 2 {
        let mut ids = Vec::new();
        for (name, index, _) in &packs[..split] {
            ids.extend(object_ids(index).with_context(|| format!("reading the index of {name}"))?);
        }
        let merged = write_pack(repo, &repo.odb()?, &ids, Compression::none()).context("merging checkpoint packs")?;
        names.drain(..split);
        names.push(merged.clone());
        save_list(&list_path, &names)?;
        for (name, _, _) in &packs[..split] {
            if *name == merged {
                continue;
            }
            for ext in ["pack", "idx", "rev"] {
                let _ = std::fs::remove_file(dir.join(format!("{name}.{ext}")));
            }
        }
    } else if names.len() != text.lines().count() {
        save_list(&list_path, &names)?;
    }
    Ok(if split >= 2 { split } else { 0 })
}

fn save_list(path: &Path, names: &[String]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, names.iter().map(|n| format!("{n}\n")).collect::<String>())?;
    std::fs::rename(&tmp, path).context("saving the list of checkpoint packs")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_four_bits_then_groups_of_seven() {
        assert_eq!(entry_header(3, 5), vec![0x35]);
        assert_eq!(entry_header(2, 15), vec![0x2f]);
        assert_eq!(entry_header(2, 16), vec![0xa0, 0x01]);
        // 1000 = 0b11_1110_1000: low four bits 8, then 62.
        assert_eq!(entry_header(1, 1000), vec![0x98, 0x3e]);
        // 2^20: low four bits 0, then 0, 0 and 4 (2^16 = 4 * 2^14).
        assert_eq!(entry_header(3, 1 << 20), vec![0xb0, 0x80, 0x80, 0x04]);
    }

    #[test]
    fn merges_keep_the_packs_a_geometric_progression() {
        assert_eq!(geometric_split(&[]), 0);
        assert_eq!(geometric_split(&[200]), 0);
        assert_eq!(geometric_split(&[200, 400, 1000]), 0);
        assert_eq!(geometric_split(&[200, 200]), 2);
        // The two small ones make 400, which the next (700 < 800) joins; 5000 stays.
        assert_eq!(geometric_split(&[200, 200, 700, 5000]), 3);
        assert_eq!(geometric_split(&[100, 1000, 1100]), 3);
    }

    #[test]
    fn a_long_history_stays_a_few_packs_with_every_object_readable() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let mut blobs = Vec::new();
        for i in 0..40u32 {
            let odb = repo.odb().unwrap();
            let mempack = odb.add_new_mempack_backend(1000).unwrap();
            let ids: Vec<Oid> = (0..5).map(|j| repo.blob(format!("{i} {j}\n").as_bytes()).unwrap()).collect();
            write_objects(&repo, &odb, &ids).unwrap();
            mempack.reset().unwrap();
            blobs.extend(ids);
            tidy(&repo).unwrap();
        }
        let packs = std::fs::read_dir(dir.path().join(".git/objects/pack"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count();
        assert!(packs <= 6, "{packs} packs after 40 checkpoints");
        let listed = std::fs::read_to_string(dir.path().join(".git").join(LIST)).unwrap();
        assert_eq!(listed.lines().count(), packs);
        let fresh = git2::Repository::open(dir.path()).unwrap();
        for id in blobs {
            fresh.find_blob(id).unwrap();
        }
    }

    #[test]
    fn packs_git_gc_removed_leave_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        write_objects(&repo, &odb, &[repo.blob(b"kept\n").unwrap()]).unwrap();
        let list = dir.path().join(".git").join(LIST);
        let mut text = std::fs::read_to_string(&list).unwrap();
        text.push_str("pack-0000000000000000000000000000000000000000\n");
        std::fs::write(&list, &text).unwrap();
        assert_eq!(tidy(&repo).unwrap(), 0);
        let left = std::fs::read_to_string(&list).unwrap();
        assert_eq!(left.lines().count(), 1);
        assert!(!left.contains("pack-0000"));
    }

    #[test]
    fn a_written_pack_is_accepted_and_its_objects_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let (small, large, tree) = write_in_memory_then_pack(dir.path(), &big);
        // A fresh handle, no mempack: everything comes from the pack on disk.
        let repo = git2::Repository::open(dir.path()).unwrap();
        assert_eq!(repo.find_blob(small).unwrap().content(), b"hello\n");
        assert_eq!(repo.find_blob(large).unwrap().content(), &big[..]);
        assert_eq!(repo.find_tree(tree).unwrap().len(), 2);
        let packs = std::fs::read_dir(dir.path().join(".git/objects/pack")).unwrap().count();
        assert!(packs >= 2, "a pack and its index");
        let loose = std::fs::read_dir(dir.path().join(".git/objects")).unwrap().flatten();
        let loose: Vec<_> = loose.filter(|e| e.file_name().len() == 2).collect();
        assert!(loose.is_empty(), "no loose objects: {loose:?}");
    }

    fn write_in_memory_then_pack(dir: &std::path::Path, big: &[u8]) -> (Oid, Oid, Oid) {
        let repo = git2::Repository::init(dir).unwrap();
        let odb = repo.odb().unwrap();
        let mempack = odb.add_new_mempack_backend(1000).unwrap();
        let small = repo.blob(b"hello\n").unwrap();
        let large = repo.blob(big).unwrap();
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("a", small, 0o100644).unwrap();
        tb.insert("b", large, 0o100755).unwrap();
        let tree = tb.write().unwrap();
        write_objects(&repo, &odb, &[small, large, tree, small]).unwrap();
        mempack.reset().unwrap();
        (small, large, tree)
    }
}
