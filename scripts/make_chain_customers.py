#!/usr/bin/env python3
"""Writes a chain-sized customer list in the original service's CSV format (the 8 columns of its
customers.csv, about 41 bytes a row): `python3 scripts/make_chain_customers.py ROWS > FILE`.

Deterministic and fast (values cycle through short lists by the customer's number, no random
stream), so 10,000,000 rows take well under a minute. Every value is invented.
"""
import sys

FIRST = ["James", "Mary", "John", "Linda", "Robert", "Susan", "Michael", "Karen", "David", "Lisa",
         "Paul", "Emily", "Mark", "Donna", "Kevin", "Carol", "Brian", "Sarah", "Ryan", "Anna"]
LAST = ["Smith", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Taylor", "Moore",
        "Clark", "Lee", "White", "Harris", "Young", "Allen", "King", "Wright", "Lopez", "Hill"]
AGE_RANGES = ["18-25", "26-35", "36-45", "46-55", "56-70", "70+"]
MARITAL = ["Married", "Single", ""]
FAMILY = ["1", "2", "3", "4", "5+"]


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = sys.stdout
    out.write("customer_id,name,age_range,marital_status,family_size,no_of_children,"
              "income_bracket,gender\n")
    batch = []
    for n in range(1, rows + 1):
        family = FAMILY[n % 5]
        children = "" if family in ("1", "2") else str(1 + n % 3)
        batch.append(f"{n},{FIRST[n % 20]} {LAST[n % 19]},{AGE_RANGES[n % 6]},{MARITAL[n % 3]},"
                     f"{family},{children},{1 + n % 12},{'MF'[n % 2]}\n")
        if len(batch) == 100_000:
            out.write("".join(batch))
            batch.clear()
    out.write("".join(batch))


if __name__ == "__main__":
    main()
