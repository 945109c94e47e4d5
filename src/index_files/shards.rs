//! An index in shards: `audit --index A --index B …`, or `--index` of a folder of them, each a
//! `bulk-audit index` of part of the inputs (the logs, or any part of the history). Which
//! folders make the union, whether they were built alike, and the union of what they read: their
//! versions fed to one index builder (a version in two shards counted once, a differing copy a
//! `version-conflict`), and their kickoffs, inputs and skipped lines in the order one audit of
//! all the dumps gives them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{IndexOptions, Info, INFO};
use crate::audit::Reading;
use crate::error::{Error, Result};
use crate::index::Conflict;
use crate::source::{InputRecord, LineRange, Role};

/// The shard folders `--index` names, in order: each path is an index, or a folder whose
/// subfolders are (taken in name order; hidden names, such as a build's staging folder, are
/// passed over). A subfolder that is no index is refused: it may be a build that did not finish.
pub(crate) fn shard_dirs(given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for g in given {
        if g.join(INFO).is_file() {
            dirs.push(g.clone());
            continue;
        }
        let entries = std::fs::read_dir(g).map_err(|e| {
            Error::Usage(format!("--index {}: not a bulk-audit index nor a folder of them ({e})", g.display()))
        })?;
        let mut inside: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(g, e))?;
            let path = entry.path();
            // A link to a shard is a shard (a union gathered from shards built elsewhere).
            if entry.file_name().to_string_lossy().starts_with('.') || !path.is_dir() {
                continue;
            }
            if !path.join(INFO).is_file() {
                return Err(Error::Usage(format!(
                    "--index {}: not a bulk-audit index (no {INFO}) nor a folder of them: {} is none (a shard whose \
                     build did not finish?); build it again or move it out",
                    g.display(),
                    path.display()
                )));
            }
            inside.push(path);
        }
        if inside.is_empty() {
            return Err(Error::Usage(format!(
                "--index {}: not a bulk-audit index (no {INFO}) nor a folder of them",
                g.display()
            )));
        }
        inside.sort();
        dirs.extend(inside);
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    for d in &dirs {
        let real = std::fs::canonicalize(d).map_err(|e| Error::io(d, e))?;
        if seen.contains(&real) {
            return Err(Error::Usage(format!("--index {}: given twice; each shard counts once", d.display())));
        }
        seen.push(real);
    }
    Ok(dirs)
}

/// How the shards are named in messages: the paths given.
pub(crate) fn named(dirs: &[PathBuf]) -> String {
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The options of the union: those every shard was built with, which must agree (each shard's
/// reading and rules are the union's), and the inputs of all of them, logs then history in shard
/// order. Exactly one shard holds the logs.
pub(crate) fn options(dirs: &[PathBuf], infos: &[Info]) -> Result<IndexOptions> {
    for (dir, info) in dirs.iter().zip(infos).skip(1) {
        let differ: Vec<String> = infos[0]
            .options
            .differences(&info.options)
            .into_iter()
            .map(|d| {
                format!(
                    "--{} {} in {}, {} in {}",
                    d.id.replace('_', "-"),
                    d.this,
                    dirs[0].display(),
                    d.other,
                    dir.display()
                )
            })
            .collect();
        if !differ.is_empty() {
            return Err(Error::Usage(format!(
                "--index: the shards were built with different options ({}): their union would not be one audit; build \
                 them with the same",
                differ.join("; ")
            )));
        }
    }
    every_line_read(dirs, infos)?;
    let with_logs: Vec<&PathBuf> =
        dirs.iter().zip(infos).filter(|(_, i)| !i.options.logs.is_empty()).map(|(d, _)| d).collect();
    match with_logs.len() {
        1 => {}
        0 => {
            return Err(Error::Usage(format!(
                "--index {}: no shard holds the logs, so no kickoff is known; index them too (bulk-audit index --logs \
                 LOGS --out IDX) and give that shard",
                named(dirs)
            )))
        }
        _ => {
            return Err(Error::Usage(format!(
                "--index: the logs are in more than one shard ({}); index all the logs once, in one shard",
                with_logs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
            )))
        }
    }
    let mut merged = infos[0].options.clone();
    merged.logs = infos.iter().flat_map(|i| i.options.logs.iter().cloned()).collect();
    // A file read in parts is one input, as one audit names it.
    merged.history = infos
        .iter()
        .zip(continuing_parts(infos))
        .filter(|(_, continues)| !continues)
        .flat_map(|(i, _)| i.options.history.iter().cloned())
        .collect();
    Ok(merged)
}

/// A history file read in parts (`index --lines`) is read whole by the union: its parts leave
/// none of its lines out, and none is in two parts (its lines would count twice). A file is
/// known by its path and SHA-256; a file also read whole by a shard needs no parts.
fn every_line_read(dirs: &[PathBuf], infos: &[Info]) -> Result<()> {
    use std::collections::BTreeMap;
    // (path, SHA-256) → each part: its lines, the file's lines, its shard.
    type Parts<'a> = BTreeMap<(&'a str, &'a str), Vec<(LineRange, u64, &'a Path)>>;
    let mut parts: Parts = BTreeMap::new();
    let mut whole: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (dir, info) in dirs.iter().zip(infos) {
        for i in info.reading.inputs.iter().filter(|i| i.role == Role::History) {
            let file = (i.path.as_str(), i.sha256.as_str());
            match i.line_range {
                Some(range) => parts.entry(file).or_default().push((range, i.lines, dir)),
                None => {
                    whole.insert(file);
                }
            }
        }
    }
    for ((path, _), mut ranges) in parts.into_iter().filter(|(file, _)| !whole.contains(file)) {
        ranges.sort_by_key(|(r, _, _)| (r.first, r.last.unwrap_or(u64::MAX)));
        let total = ranges[0].1;
        let mut next = 1u64;
        let mut gap = None;
        for (i, (r, _, dir)) in ranges.iter().enumerate() {
            if r.first < next && r.first <= total {
                let (before, _, other) = &ranges[i - 1];
                return Err(Error::Usage(format!(
                    "--index: lines {}..{} of history file {path} are in two shards ({before} in {}, {r} in {}): their \
                     lines would be counted twice; build the parts without overlap",
                    r.first,
                    (next - 1).min(r.last.unwrap_or(u64::MAX)).min(total),
                    other.display(),
                    dir.display()
                )));
            }
            if r.first > next && next <= total {
                gap = Some((next, (r.first - 1).min(total)));
                break;
            }
            next = next.max(r.last.map_or(u64::MAX, |l| l.saturating_add(1)));
        }
        if gap.is_none() && next <= total {
            gap = Some((next, total));
        }
        if let Some((from, to)) = gap {
            let read: Vec<String> = ranges.iter().map(|(r, _, dir)| format!("{r} in {}", dir.display())).collect();
            return Err(Error::Usage(format!(
                "--index: lines {from}..{to} of history file {path} ({total} lines) are in no shard (read: {}); their \
                 versions would be missing from the audit: index them too (bulk-audit index --history {path} --lines \
                 {from}..{to})",
                read.join(", ")
            )));
        }
    }
    Ok(())
}

/// The union of what the shards read, as one reading of all their inputs would give it: the
/// logs' kickoffs, coverage and skipped lines, then each shard's history files, layouts, names
/// and skipped lines in shard order; every input's record, logs first.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) fn reading(infos: Vec<Info>) -> Reading {
    let mut log_inputs = Vec::new();
    let mut history_inputs = Vec::new();
    let mut log_skipped = Vec::new();
    let mut history_skipped = Vec::new();
    let mut union = Reading {
        events: Vec::new(),
        seen: Default::default(),
        coverage: Default::default(),
        skipped: Vec::new(),
        history_files: Vec::new(),
        layouts: Vec::new(),
        named_types: BTreeSet::new(),
        inputs: Vec::new(),
    };
    let continues = continuing_parts(&infos);
    for (info, continues) in infos.into_iter().zip(continues) {
        let r = info.reading;
        let history_paths: BTreeSet<&Path> = r.history_files.iter().map(|f| f.path.as_path()).collect();
        let (h, l): (Vec<_>, Vec<_>) = r.skipped.into_iter().partition(|s| history_paths.contains(s.path.as_path()));
        history_skipped.extend(h);
        log_skipped.extend(l);
        for i in r.inputs {
            match i.role {
                Role::Logs => log_inputs.push(i),
                Role::History if continues => {
                    let whole: &mut InputRecord = history_inputs.last_mut().expect("the part before");
                    whole.lines_read += i.lines_read;
                    whole.lines_blank += i.lines_blank;
                    whole.lines_skipped += i.lines_skipped;
                    whole.rest_unread |= i.rest_unread;
                    whole.line_range =
                        whole.line_range.zip(i.line_range).map(|(a, b)| LineRange { first: a.first, last: b.last });
                }
                Role::History => history_inputs.push(i),
            }
            // Parts that hold the whole file (read to its end, in order, or one part of a small
            // file given to a task of many lines) are the file read whole, as one audit reads it.
            if let Some(last) = history_inputs.last_mut() {
                if last.line_range.is_some_and(|r| r.covers(last.lines)) {
                    last.line_range = None;
                }
            }
        }
        if !info.options.logs.is_empty() {
            union.events = r.events;
            union.seen = r.seen;
            union.coverage = r.coverage;
        }
        if continues {
            // The later part has told apart every line up to its end: its layout is the file's.
            *union.layouts.last_mut().expect("the part before") = r.layouts.into_iter().next().unwrap_or_default();
        } else {
            union.history_files.extend(r.history_files);
            union.layouts.extend(r.layouts);
        }
        union.named_types.extend(r.named_types);
    }
    union.skipped = log_skipped.into_iter().chain(history_skipped).collect();
    union.inputs = log_inputs.into_iter().chain(history_inputs).collect();
    union
}

/// The conflicts of the union: each shard's (its file numbers moved up past the shards before
/// it) and those between shards, in the order one index gives them.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) fn conflicts(infos: &[Info], between: Vec<Conflict>) -> Vec<Conflict> {
    let mut all = between;
    for (info, first_file) in infos.iter().zip(first_files(infos)) {
        for c in &info.conflicts {
            let mut c = c.clone();
            c.kept.file += first_file;
            c.dropped.file += first_file;
            all.push(c);
        }
    }
    crate::index::sort_conflicts(&mut all);
    all
}

/// The number, in the union, of each shard's first history file: the files of the shards before
/// it come first.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) fn first_files(infos: &[Info]) -> Vec<u32> {
    infos
        .iter()
        .zip(continuing_parts(infos))
        .scan(0u32, |next, (info, continues)| {
            if continues {
                // The same file as the part before: its number.
                return Some(*next - 1);
            }
            let first = *next;
            *next += info.reading.history_files.len() as u32;
            Some(first)
        })
        .collect()
}

/// For each shard, whether it holds the next part of the file the shard before it ends with
/// (`index --lines`: the same path and SHA-256, its first line just after the other's last): the
/// union then reads them as one file, as one audit does.
fn continuing_parts(infos: &[Info]) -> Vec<bool> {
    let part = |info: &Info, last: bool| {
        let mut history = info.reading.inputs.iter().filter(|i| i.role == Role::History);
        if last { history.next_back() } else { history.next() }
            .and_then(|i| Some((i.path.clone(), i.sha256.clone(), i.line_range?)))
    };
    let mut out = vec![false; infos.len()];
    for i in 1..infos.len() {
        let (Some(before), Some(this)) = (part(&infos[i - 1], true), part(&infos[i], false)) else { continue };
        out[i] = infos[i].reading.history_files.len() == 1
            && before.0 == this.0
            && before.1 == this.1
            && before.2.last.is_some_and(|l| l + 1 == this.2.first);
    }
    out
}
