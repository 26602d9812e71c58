//! Arbitrary bytes as a customer list: a list or a config error naming the line, never a panic.
#![no_main]

use customersim_source_customer_list::CustomerList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = CustomerList::from_reader(data, "fuzz.csv");
});
