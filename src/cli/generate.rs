//! `bulk-audit completions SHELL` and `bulk-audit man`: shell completions and the man pages (one
//! per command), generated from the command line's own definition.

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

/// The sections every page ends with: the exit statuses and the other pages.
fn closing_sections(pages: &[String]) -> String {
    let mut roff = String::from(
        ".SH \"EXIT STATUS\"\n\
         .TP\n0\nSuccess.\n\
         .TP\n1\nA usage error: a bad option, a history that cannot answer any export, an output folder \
         refused, an index that fails its verification, a time without an offset and no \\-\\-tz.\n\
         .TP\n2\nAn input could not be read: the message names the file, the line, the byte offset and what \
         was wrong (ids at most, never a body).\n\
         .TP\n3\nAn output could not be written, or another run holds its lock.\n\
         .TP\n4\nAn internal error: a bug in bulk\\-audit.\n\
         .TP\n5\n\\-\\-fail\\-on: every output was written, and a selected export has a finding of a named kind \
         or is incomplete.\n\
         .TP\n128 + signal\nStopped by SIGINT (130), SIGTERM (143) or SIGHUP (129), the half\\-written output \
         and the lock removed first.\n\
         .SH \"SEE ALSO\"\n",
    );
    let names: Vec<String> = pages.iter().map(|p| format!("\\fB{}\\fR(1)", p.replace('-', "\\-"))).collect();
    roff.push_str(&names.join(", "));
    roff.push_str(
        ".\nThe README and docs/ of the source (what an audit needs, every input form, every output column \
         and finding kind, the decisions, safety), and docs/SPEC.md, the rules the audit follows.\n",
    );
    roff
}

/// One page: clap's rendering of `cmd`, then the closing sections.
fn page(cmd: clap::Command, pages: &[String]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out).map_err(|e| Error::output("the man page", e))?;
    out.extend_from_slice(closing_sections(pages).as_bytes());
    Ok(out)
}

/// `bulk-audit man`: the top page (roff, section 1) on standard output; with `--out DIR`, every
/// page written into DIR: `bulk-audit.1` and `bulk-audit-<command>.1` for each command.
pub(super) fn man(out: Option<&std::path::Path>) -> Result<()> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let commands: Vec<clap::Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned().collect();
    let mut pages = vec!["bulk-audit".to_string()];
    pages.extend(commands.iter().map(|c| format!("bulk-audit-{}", c.get_name())));
    let Some(dir) = out else {
        return to_stdout_raw(&page(cmd, &pages)?);
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, bytes).map_err(|e| Error::output(&path, e))
    };
    write("bulk-audit", page(cmd.clone(), &pages)?)?;
    for c in commands {
        // clap takes a command's name as a `&'static str`: the process writes the pages and ends.
        let name: &'static str = Box::leak(format!("bulk-audit-{}", c.get_name()).into_boxed_str());
        write(name, page(c.name(name).bin_name(name), &pages)?)?;
    }
    Ok(())
}
