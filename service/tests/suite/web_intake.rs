//! The school administration system's pupils with no case, in the web UI: the start
//! page of the unit's school says so, the list shows them without identity, a pupil is
//! shown after a POST (audited) and the case is opened from the hub's data in one step;
//! another unit's school sees nothing of it, the central administrator counts only.

use crate::support::web::*;
use fiktiv_tests::TestHub;

#[test]
fn a_school_opens_the_case_of_a_pupil_from_the_school_system() {
    let hub = TestHub::start(400, 13).unwrap();
    let pupils = hub.marked_pupils().to_vec();
    let unit = pupils[0].unit_code.clone();
    let at_unit: Vec<_> = pupils.iter().filter(|p| p.unit_code == unit).collect();
    let port = fiktiv_tests::free_port().unwrap();
    let config = format!(
        "[log]\nformat = \"text\"\nlevel = \"warn\"\n\n[ss12000]\nbase_url = \"{}\"\nread_every_minutes = 0\n",
        hub.base_url()
    );
    let server = Server::start_on(port, &config).expect("port taken");
    let out = server.cli_env(
        &["hub", "read", "--full"],
        &[("FIKTIV_SS12000_SECRET", hub.token())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("new intake items"),
        "{}",
        text(&out.stdout)
    );

    let status = server.cli_env(&["hub", "status"], &[]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let shown = text(&status.stdout);
    assert!(
        shown.contains("last good read: 20") && !shown.contains("running:"),
        "{shown}"
    );

    let rektor = server.add_user("rektor", &["school"], &[&unit]);
    let b = Browser::start();
    first_sign_in(&b, &server, &rektor, 0);
    // The start page says what needs doing.
    assert!(
        b.exists("li.task[data-kind=\"intake-waiting\"]"),
        "{}",
        b.source()
    );
    b.goto(&format!("{}/intake", server.base()));
    b.assert_accessible("intake list");
    let list = b.source();
    assert_eq!(list.matches("class=\"intake-open\"").count(), at_unit.len());
    for p in &at_unit {
        assert!(!list.contains(&p.civic_no) && !list.contains(&p.family_name));
    }
    // Show the first pupil (a POST, after the second factor again), then open the case
    // from it.
    b.click("button.intake-open");
    b.wait_for_path("/step-up?next=/intake");
    b.fill("#code", &totp(&rektor.secret, 1));
    b.click("#step-up-submit");
    b.wait_for_path("/intake");
    b.click("button.intake-open");
    b.wait_for_path_prefix(&format!("/intake/{unit}/"));
    assert!(b.exists("#intake-pupil"));
    b.assert_accessible("intake pupil");
    let shown = b.text_of("#intake-pupil");
    let p = at_unit
        .iter()
        .find(|p| shown.contains(&p.civic_no))
        .expect("the pupil's number is shown");
    assert!(shown.contains(&p.given_name) && shown.contains(&p.family_name));
    b.click("#intake-open-case");
    b.wait_for_path_prefix("/cases/");
    assert!(b.url().contains("/cases/"), "{}", b.url());
    b.goto(&format!("{}/intake", server.base()));
    assert_eq!(
        b.source().matches("class=\"intake-open\"").count(),
        at_unit.len() - 1
    );
    let audit = server.audit();
    assert!(audit
        .iter()
        .any(|(_, a, o, _)| a == "intake.read-identity" && o == "ok"));
    assert!(audit
        .iter()
        .any(|(_, a, o, _)| a == "case.open" && o == "ok"));
    assert!(audit.iter().any(|(_, a, _, _)| a == "hub.link"));

    // Another unit's school: no list of this unit; the central administrator: counts.
    let other = server.add_user("annan", &["school"], &["unit-x"]);
    let b2 = Browser::start();
    first_sign_in(&b2, &server, &other, 0);
    b2.goto(&format!("{}/intake", server.base()));
    assert!(b2.exists("#intake-none"), "{}", b2.source());
    let central = server.add_user("central", &["central-admin"], &[]);
    let b3 = Browser::start();
    first_sign_in(&b3, &server, &central, 0);
    b3.goto(&format!("{}/intake", server.base()));
    assert!(b3.exists("#intake-counts"), "{}", b3.source());
    // How the reads stand: the last good read, nothing failed, nothing running now.
    assert!(b3.exists("#hub-status"), "{}", b3.source());
    assert!(!b3.exists("#hub-failed") && !b3.exists("#hub-running"));
    let counts = b3.source();
    for p in &pupils {
        assert!(!counts.contains(&p.civic_no) && !counts.contains(&p.family_name));
    }
    b3.assert_accessible("intake counts");
}
