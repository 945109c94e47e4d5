//! HTML pages (the audit's report, the disclosures page): escaping of every string from the inputs, one inline style and one
//! inline script, both allowed by their SHA-256 in the page's Content-Security-Policy and
//! nothing else (no network, no other file, no other script).

use sha2::{Digest, Sha256};

/// Text from the inputs made safe for HTML element content: markup escaped, and, where it holds
/// right-to-left letters or bidirectional controls, isolated in `<bdi>` with each control shown
/// as `[U+202E]` — so an id cannot reorder the text around it (an export time read backwards).
pub(crate) fn esc(text: &str) -> String {
    if !text.chars().any(reorders) {
        return esc_plain(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if bidi_control(c) {
            shown.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            shown.push(c);
        }
    }
    format!("<bdi>{}</bdi>", esc_plain(&shown))
}

/// The bidirectional controls: embeddings and overrides (U+202A–U+202E), isolates
/// (U+2066–U+2069), and the marks (U+200E, U+200F, U+061C).
fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Whether a character can change the order of the text around it: a bidirectional control or
/// a right-to-left letter (Hebrew, Arabic, Syriac, Thaana, N'Ko … and their presentation forms).
fn reorders(c: char) -> bool {
    bidi_control(c)
        || matches!(c, '\u{0590}'..='\u{08ff}' | '\u{fb1d}'..='\u{fdff}' | '\u{fe70}'..='\u{feff}' | '\u{10800}'..='\u{10fff}' | '\u{1e800}'..='\u{1efff}')
}

/// Text made safe for HTML element content and quoted attribute values, nothing more (the page
/// title, where no element may stand).
fn esc_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push_str(&format!("&#x{:x};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem 2rem;color:#1b1f24}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;border-bottom:2px solid #d0d7de;margin-top:2rem}
h3{font-size:1.05rem;margin:1.4rem 0 .3rem}h4{font-size:.95rem;margin:.8rem 0 .2rem}
table{border-collapse:collapse;margin:.3rem 0 .8rem}td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,.id{font-family:ui-monospace,monospace;font-size:.9em;overflow-wrap:anywhere}
.export{border:1px solid #d0d7de;border-radius:6px;padding:.4rem .9rem;margin:.6rem 0}
.rejected{background:#fff8f0}.finding{border-left:4px solid #bf8700;padding-left:.6rem;margin:.4rem 0}
.muted{color:#57606a}.search{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #d0d7de}
.search input{width:24rem;max-width:100%;font-size:1rem;padding:.2rem .4rem}.hidden{display:none}
@media print{.search{display:none}.export{break-inside:avoid}body{max-width:none;padding:0}}
";

/// The search box the page's script filters with (`#q`, `#count`).
pub(crate) const SEARCH_BOX: &str = "<div class=\"search\"><input id=\"q\" type=\"search\" \
    placeholder=\"Search: a patient id, a client, an export id\" aria-label=\"Search\"> \
    <span id=\"count\" class=\"muted\"></span></div>\n";

/// Hides every `[data-search]` block whose text does not hold the query (case-insensitive).
const SCRIPT: &str = "
(function(){var q=document.getElementById('q');if(!q)return;var blocks=document.querySelectorAll('[data-search]');
var count=document.getElementById('count');q.addEventListener('input',function(){var v=q.value.trim().toLowerCase();var shown=0;
for(var i=0;i<blocks.length;i++){var hit=!v||blocks[i].textContent.toLowerCase().indexOf(v)>=0;blocks[i].classList.toggle('hidden',!hit);if(hit)shown++;}
count.textContent=v?shown+' of '+blocks.length+' blocks match':'';});})();
";

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("'sha256-{}'", super::base64(&digest))
}

/// The whole page around `body` (already escaped HTML).
pub(crate) fn page(title: &str, body: &str) -> String {
    let csp = format!(
        "default-src 'none'; style-src {}; script-src {}; img-src 'none'; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc_plain(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_from_the_inputs_is_text() {
        assert_eq!(esc("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(esc("\"><img src=x onerror=alert(1)>"), "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(esc("a\u{1b}[2Jb"), "a&#x1b;[2Jb");
    }

    #[test]
    fn text_that_could_reorder_its_surroundings_is_isolated() {
        assert_eq!(esc("plain-id"), "plain-id");
        assert_eq!(esc("x\u{202e}gnp.exe"), "<bdi>x[U+202E]gnp.exe</bdi>");
        assert_eq!(esc("\u{05d0}<b>"), "<bdi>\u{05d0}&lt;b&gt;</bdi>");
    }

    #[test]
    fn the_policy_allows_exactly_the_page_s_own_style_and_script() {
        let html = page("t", "");
        assert!(html.contains(&format!("script-src {}", csp_hash(SCRIPT))));
        assert_eq!(html.matches("<script>").count(), 1);
        // The hash is of the exact text between the tags.
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
    }
}
