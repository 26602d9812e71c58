//! The book (`docs/book`) and the README: the reference pages are what the code generates, every
//! link resolves (the link check `.ci/run` relies on beside `mdbook build`), every chapter is in
//! the summary, and the README stays a landing page.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every Markdown file of the book's sources, and the README.
fn documents() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![repository("README.md")];
    walk(&repository("docs/book/src"), &mut out);
    out.sort();
    out
}

#[test]
fn the_reference_pages_are_what_the_code_generates() {
    let dir = repository(customersim::reference::REFERENCE_DIR);
    let update = std::env::var_os("UPDATE_REFERENCE").is_some();
    for (name, generated) in customersim::reference::pages() {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} differs from what the code generates: run `UPDATE_REFERENCE=1 cargo test --test book`",
            path.display()
        );
    }
}

#[test]
fn the_reference_names_every_plugin_key_and_variable() {
    let pages: String = customersim::reference::pages()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    for variable in customersim::env::known_variables() {
        assert!(pages.contains(&format!("`{variable}`")), "{variable}");
    }
    for key in [
        "`average_in_store`",
        "`max_pending_events`",
        "`max_pages`",
        "`qos`",
        "`lease`",
    ] {
        assert!(pages.contains(key), "{key}");
    }
    for command in [
        "customersim run",
        "customersim validate",
        "customersim schema",
    ] {
        assert!(pages.contains(command), "{command}");
    }
}

/// The anchor mdBook gives a heading: lowercase, spaces to `-`, other punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A document's links (outside code) and heading anchors.
fn links_and_anchors(text: &str) -> (Vec<String>, BTreeSet<String>) {
    let (mut links, mut anchors) = (Vec::new(), BTreeSet::new());
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if let Some(heading) = line.strip_prefix('#') {
            anchors.insert(slug(heading.trim_start_matches('#')));
        }
        // Inline code may hold `](` that is no link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for part in prose.split("](").skip(1) {
            if let Some(target) = part.split(')').next() {
                links.push(target.to_string());
            }
        }
    }
    (links, anchors)
}

#[test]
fn every_link_of_the_readme_and_the_book_resolves() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        let (links, anchors) = links_and_anchors(&text);
        for link in links {
            if link.is_empty() || link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                document.clone()
            } else {
                document.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", document.display()));
                continue;
            }
            if !anchor.is_empty() && target.extension().is_some_and(|ext| ext == "md") {
                let target_anchors = if path.is_empty() {
                    anchors.clone()
                } else {
                    links_and_anchors(&std::fs::read_to_string(&target).unwrap()).1
                };
                if !target_anchors.contains(anchor) {
                    broken.push(format!("{}: {link} (no such heading)", document.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "{checked} links checked");
}

#[test]
fn every_chapter_is_in_the_summary() {
    let src = repository("docs/book/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    for document in documents() {
        let Ok(relative) = document.strip_prefix(&src) else {
            continue;
        };
        let relative = relative.to_string_lossy();
        if relative == "SUMMARY.md" {
            continue;
        }
        assert!(
            summary.contains(&format!("]({relative})")),
            "{relative} is not in SUMMARY.md"
        );
    }
}

#[test]
fn the_readme_is_a_landing_page() {
    let readme = std::fs::read_to_string(repository("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 300,
        "the README has {lines} lines; the rest belongs in the book"
    );
    for part in [
        "## Quick start",
        "## The demo store",
        "## Where to go next",
        "live-view.png",
    ] {
        assert!(readme.contains(part), "{part}");
    }
}
