//! The integration tests, one binary (as ripgrep's are): each module runs the real `bulk-audit`
//! binary on real files and checks what it wrote, through the one harness in `common`. One
//! binary links the library once, not once per file.

mod common;

mod bombs;
mod completeness;
mod disclosures;
mod field;
mod guide;
mod hostile;
mod hostile_outputs;
mod index;
mod options;
mod portable;
mod readers;
mod report;
mod rules;
mod safety;
mod shards;
mod sql;
mod streams;
mod synthea;
