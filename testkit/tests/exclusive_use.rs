//! The shared RabbitMQ's turn is held by one holder at a time, and passes on when dropped.

use std::sync::mpsc;
use std::time::Duration;

use customersim_testkit::rabbitmq::ExclusiveUse;

#[test]
fn a_second_holder_waits_until_the_first_lets_go() {
    let first = ExclusiveUse::acquire();
    let (got_it, turn) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _second = ExclusiveUse::acquire();
        got_it.send(()).expect("the test is waiting");
    });
    assert!(
        turn.recv_timeout(Duration::from_millis(500)).is_err(),
        "a second holder got in while the first held it"
    );
    drop(first);
    turn.recv_timeout(Duration::from_secs(10))
        .expect("the second holder's turn once the first let go");
    waiter.join().expect("the waiter");
}
