//! The thresholds as a JUnit XML file (`run --junit FILE`), the test-report format CI systems
//! (GitLab, Jenkins, GitHub actions' reporters, Azure Pipelines) read: one `<testsuite>` named
//! [`JUNIT_SUITE`], one `<testcase>` per threshold (`classname` `thresholds.<metric>`, `name` the
//! expression), and a `<failure>` with the measured figure for each breached one. Written with
//! `quick-xml`, which escapes what it writes (`<` in every expression), and replaced whole like
//! the run report ([`ReportFile`]).

use std::time::Duration;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::Outcome;
use crate::report_file::ReportFile;

/// The name of the test suite in the JUnit file.
pub const JUNIT_SUITE: &str = "customersim thresholds";

/// The JUnit XML of `outcomes`; `run_time` is the run's wall time (the suite's `time`).
pub fn junit_xml(outcomes: &[Outcome], run_time: Duration) -> String {
    let tests = outcomes.len().to_string();
    let failures = outcomes
        .iter()
        .filter(|outcome| !outcome.passed)
        .count()
        .to_string();
    let time = format!("{:.3}", run_time.as_secs_f64());
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let written = (|| -> std::io::Result<()> {
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        writer
            .create_element("testsuites")
            .with_attributes([
                ("name", "customersim"),
                ("tests", tests.as_str()),
                ("failures", failures.as_str()),
                ("errors", "0"),
                ("time", time.as_str()),
            ])
            .write_inner_content(|writer| {
                writer
                    .create_element("testsuite")
                    .with_attributes([
                        ("name", JUNIT_SUITE),
                        ("tests", tests.as_str()),
                        ("failures", failures.as_str()),
                        ("errors", "0"),
                        ("skipped", "0"),
                        ("time", time.as_str()),
                    ])
                    .write_inner_content(|writer| {
                        for outcome in outcomes {
                            testcase(writer, outcome)?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })();
    written.expect("writing XML to memory cannot fail");
    let mut text = String::from_utf8(writer.into_inner()).expect("the XML is built from strings");
    text.push('\n');
    text
}

/// One threshold's `<testcase>`: a `<failure>` when breached, the measured figure as its
/// `<system-out>` when passed.
fn testcase(writer: &mut Writer<Vec<u8>>, outcome: &Outcome) -> std::io::Result<()> {
    let classname = format!("thresholds.{}", outcome.metric);
    writer
        .create_element("testcase")
        .with_attributes([
            ("classname", classname.as_str()),
            ("name", outcome.threshold.as_str()),
            ("time", "0"),
        ])
        .write_inner_content(|writer| {
            if outcome.passed {
                writer
                    .create_element("system-out")
                    .write_text_content(BytesText::new(&format!("measured {}", outcome.shown)))?;
                return Ok(());
            }
            let message = match outcome.measured {
                Some(_) => format!("measured {} breaches {}", outcome.shown, outcome.threshold),
                None => format!(
                    "{}: nothing to compare with {}",
                    outcome.shown, outcome.threshold
                ),
            };
            let detail = format!(
                "{classname}: {}; measured {}",
                outcome.threshold, outcome.shown
            );
            writer
                .create_element("failure")
                .with_attributes([("message", message.as_str()), ("type", "threshold")])
                .write_text_content(BytesText::new(&detail))?;
            Ok(())
        })?;
    Ok(())
}

/// Writes the JUnit XML of `outcomes` to `file` (created before the run, for `--junit`, with
/// [`ReportFile::create_for`]) and renames it into place.
pub fn write_junit(
    file: ReportFile,
    outcomes: &[Outcome],
    run_time: Duration,
) -> Result<(), String> {
    file.write(&junit_xml(outcomes, run_time))
}
