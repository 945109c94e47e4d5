//! `bulk-audit completions SHELL` and `bulk-audit man`: shell completions and the man page,
//! generated from the command line's own definition.

use clap::CommandFactory;

use super::Cli;
use crate::error::{Error, Result};
use crate::output::terminal::to_stdout_raw;

/// Writes the completion script for `shell` to standard output.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "bulk-audit", &mut out);
    to_stdout_raw(&out)
}

/// Writes the man page (roff, section 1) to standard output.
pub(super) fn man() -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out).map_err(|e| Error::output("standard output", e))?;
    to_stdout_raw(&out)
}
