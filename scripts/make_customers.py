#!/usr/bin/env python3
"""Writes configs/customers.csv: 1,000 made-up customers in the original service's CSV format.

Deterministic (a fixed-seed random stream), so running it again gives the same file:
    python3 scripts/make_customers.py > configs/customers.csv
Names are combined from short lists; every value is invented.
"""
import csv
import random
import sys

FIRST_M = ["James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
           "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Paul", "Steven", "Andrew", "Joshua",
           "Kevin", "Brian", "George", "Edward", "Ronald", "Timothy", "Jason", "Jeffrey", "Ryan"]
FIRST_F = ["Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
           "Sarah", "Karen", "Nancy", "Lisa", "Betty", "Margaret", "Sandra", "Ashley", "Emily",
           "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
        "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
        "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright"]
AGE_RANGES = ["18-25", "26-35", "36-45", "46-55", "56-70", "70+"]
FIELDS = ("customer_id,name,age_range,marital_status,family_size,no_of_children,income_bracket,"
          "gender,mean_discount_used_by_cust,unique_items_bought_by_cust,"
          "mean_selling_price_paid_by_cust,mean_quantity_bought_by_cust,"
          "total_discount_used_by_cust,total_coupons_used_by_cust,total_price_paid_by_cust,"
          "total_quantity_bought_by_cust").split(",")


def main() -> None:
    rng = random.Random(20261128)
    writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for customer_id in range(1, 1001):
        gender = rng.choice("MF")
        first = rng.choice(FIRST_M if gender == "M" else FIRST_F)
        marital = rng.choice(["Married", "Single", ""])
        family = rng.choice(["1", "2", "3", "4", "5+"])
        children = "" if family in ("1", "2") else rng.choice(["1", "2", "3+"])
        items = rng.randint(20, 400)
        quantity = round(rng.uniform(1.0, 3.5), 4)
        price = round(rng.uniform(60.0, 160.0), 4)
        discount = round(rng.uniform(-30.0, 0.0), 4)
        bought = rng.randint(items, items * 4)
        writer.writerow({
            "customer_id": customer_id,
            "name": f"{first} {rng.choice(LAST)}",
            "age_range": rng.choice(AGE_RANGES),
            "marital_status": marital,
            "family_size": family,
            "no_of_children": children,
            "income_bracket": rng.randint(1, 12),
            "gender": gender,
            "mean_discount_used_by_cust": discount,
            "unique_items_bought_by_cust": items,
            "mean_selling_price_paid_by_cust": price,
            "mean_quantity_bought_by_cust": quantity,
            "total_discount_used_by_cust": round(discount * bought, 2),
            "total_coupons_used_by_cust": rng.randint(0, 40),
            "total_price_paid_by_cust": round(price * bought, 2),
            "total_quantity_bought_by_cust": round(quantity * bought),
        })


if __name__ == "__main__":
    main()
