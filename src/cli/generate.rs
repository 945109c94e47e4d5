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
    if shell == clap_complete::Shell::Bash {
        // clap_complete names the subcommands' case arms from the binary name with its hyphen
        // read as a separator (`bulk__subcmd__audit__subcmd__audit`) while the state it sets is
        // `bulk__audit__subcmd__audit`: no subcommand option would ever complete.
        let text = String::from_utf8_lossy(&out).replace("bulk__subcmd__audit", "bulk__audit");
        return to_stdout_raw(text.as_bytes());
    }
    to_stdout_raw(&out)
}

/// Writes the man page (roff, section 1) to standard output.
pub(super) fn man() -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out).map_err(|e| Error::output("standard output", e))?;
    to_stdout_raw(&out)
}
