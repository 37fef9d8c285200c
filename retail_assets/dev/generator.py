"""Reproducible source data, shaped like the real source system's files (docs/rules.md §1).

The real groups can't be shipped with the project, and clean sample data would hide the
bugs that matter. This module writes look-alike groups from a seed, with every kind of dirt
the real files carry: junk-tailed emails, badly cased names, ragged rows, slashes inside
streets, leading-zero postal codes, duplicated product names, attributes that change
between groups, branches and agents used before they are announced, a redelivered group
and, now and then, a row that cannot be trusted. Same seed, same bytes.
"""

import csv
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

BRANCH_HEADER = ["branch_id", "location", "establish_date", "class"]
AGENT_HEADER = ["sales_person_id", "name", "hire_date"]
TRANSACTION_HEADER = [
    "transaction_date",
    "transaction_id",
    "customer_id",
    "customer_fname",
    "cusomter_lname",
    "cusomter_email",
    "sales_agent_id",
    "branch_id",
    "product_id",
    "product_name",
    "product_category",
    "offer_1",
    "offer_2",
    "offer_3",
    "offer_4",
    "offer_5",
    "units",
    "unit_price",
    "is_online",
    "payment_method",
    "shipping_address",
]  # the misspellings are the source's
COLUMN = {name: index for index, name in enumerate(TRANSACTION_HEADER)}
OFFERS = slice(COLUMN["offer_1"], COLUMN["offer_5"] + 1)

# (product_id, product_name, product_category, unit_price); two names live under two ids.
PRODUCTS = [
    ("1", "Smartphone", "Electronics", "699.99"),
    ("2", "Laptop", "Electronics", "1199.00"),
    ("3", "Tablet", "Electronics", "329.50"),
    ("4", "Wireless Earbuds", "Electronics", "59.99"),
    ("5", "Smartwatch", "Electronics", "249.99"),
    ("6", "Bluetooth Speaker", "Electronics", "89.95"),
    ("7", "USB-C Charger", "Electronics", "19.99"),
    ("8", "Wireless Earbuds", "Electronics", "79.99"),
    ("9", "T-Shirt", "Clothing", "14.99"),
    ("10", "Jeans", "Clothing", "49.90"),
    ("11", "Hoodie", "Clothing", "39.99"),
    ("12", "Sneakers", "Clothing", "89.00"),
    ("13", "Jacket", "Clothing", "119.99"),
    ("14", "Dress", "Clothing", "59.50"),
    ("15", "Socks", "Clothing", "7.99"),
    ("16", "Baseball Cap", "Clothing", "17.25"),
    ("17", "Coffee Maker", "Home", "79.00"),
    ("18", "Blender", "Home", "45.99"),
    ("19", "Desk Lamp", "Home", "24.95"),
    ("20", "Cookware Set", "Home", "149.99"),
    ("21", "Bath Towel", "Home", "12.50"),
    ("22", "Vacuum Cleaner", "Home", "199.99"),
    ("23", "Throw Pillow", "Home", "18.00"),
    ("24", "Yoga Mat", "Sports", "24.99"),
    ("25", "Dumbbell Set", "Sports", "89.99"),
    ("26", "Tennis Racket", "Sports", "129.00"),
    ("27", "Football", "Sports", "29.99"),
    ("28", "Running Shorts", "Sports", "22.50"),
    ("29", "Water Bottle", "Sports", "15.00"),
    ("30", "Yoga Mat", "Sports", "34.99"),
]

# street/city/STATE/postal: one street holds a "/", many postal codes start with 0.
ADDRESSES = [
    "421 1/2 6th Street Southeast/Washington/DC/20003",
    "12 Elm Street/Somerville/MA/02143",
    "88 North Pleasant Street/Amherst/MA/01002",
    "300 College Street/New Haven/CT/06510",
    "9 Beacon Street/Boston/MA/02108",
    "45 Grove Street/Jersey City/NJ/07302",
    "10 Westminster Street/Providence/RI/02903",
    "250 Elm Street/Manchester/NH/03101",
    "77 Church Street/Burlington/VT/05401",
    "5 Congress Street/Portland/ME/04101",
    "350 Fifth Avenue/New York/NY/10118",
    "1500 Market Street/Philadelphia/PA/19102",
    "233 South Wacker Drive/Chicago/IL/60606",
    "800 Nicollet Mall/Minneapolis/MN/55402",
    "200 Peachtree Street/Atlanta/GA/30303",
    "1000 Ocean Drive/Miami Beach/FL/33139",
    "2500 Canal Street/New Orleans/LA/70119",
    "600 Congress Avenue/Austin/TX/78701",
    "1200 Main Street/Dallas/TX/75202",
    "700 Colorado Boulevard/Denver/CO/80206",
    "100 North Main Street/Salt Lake City/UT/84111",
    "42 Pike Street/Seattle/WA/98101",
    "1 Market Street/San Francisco/CA/94105",
    "100 West 1st Street/Los Angeles/CA/90012",
    "400 Southwest Broadway/Portland/OR/97205",
]

# Every email carries one of these, glued after the domain.
EMAIL_TAILS = [
    "#4r",
    ";",
    "]x",
    "'",
    "\\",
    "|",
    "^",
    "[",
    "&",
    "}4",
    "$u",
    "*",
    ":",
    "<",
    "(",
    "{",
    ">",
    '"',
    "/",
    ")x",
    "%x",
    " ",
    "m",
]
DOMAINS = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com"]

FIRST_NAMES = [
    "John",
    "Mary",
    "James",
    "Linda",
    "Robert",
    "Susan",
    "Michael",
    "Karen",
    "David",
    "Nancy",
    "William",
    "Lisa",
    "Richard",
    "Betty",
    "Joseph",
    "Sandra",
    "Thomas",
    "Ashley",
    "Charles",
    "Emily",
    "Daniel",
    "Donna",
    "Matthew",
    "Carol",
    "Anthony",
    "Laura",
    "Mark",
    "Helen",
    "Steven",
    "Amy",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Hill",
    "Wick",
]
BRANCH_LOCATIONS = [
    "Boston",
    "Chicago",
    "Houston",
    "Phoenix",
    "San Diego",
    "Dallas",
    "San Jose",
    "Austin",
    "Denver",
    "Seattle",
]


def _unpadded(day: date) -> str:
    """The source writes most dates without zero padding: 2023-5-7."""
    return f"{day.year}-{day.month}-{day.day}"


def _days(first: date, last: date, style: Callable[[date], str]) -> list[str]:
    """Every day from first to last, written in the given style (a list, so picks are seeded)."""
    return [style(first + timedelta(n)) for n in range((last - first).days + 1)]


TRANSACTION_DAYS = _days(date(2022, 1, 1), date(2023, 12, 31), _unpadded)
HIRE_DAYS = _days(date(2015, 1, 1), date(2022, 12, 31), _unpadded)
ESTABLISH_DAYS = _days(date(2000, 1, 1), date(2020, 12, 31), date.isoformat)
UNITS = [str(n) for n in range(1, 11)]
OFFLINE_PAYMENTS = ["Cash", "Credit Card"]
ONLINE_PAYMENTS = ["Credit Card", "PayPal", "Stripe"]
BAD_DATES = ["2023-13-45", "2023-2-30", "not-a-date"]
DEFECTS = ["multiple_offers", "bad_units", "bad_date"]

ONLINE_SHARE = 1 / 3
OFFER_SHARE = 1 / 2
DEFECT_RATE = 1 / 500
DEFECTS_GUARANTEED_FROM = 50  # rows in a group
AGENTS = 20
CUSTOMER_POOL = 300
CUSTOMERS_PER_GROUP = 100
RENAMES_PER_GROUP = 2
FIRST_TRANSACTION_ID = 100_000


@dataclass
class _Member:
    """A branch or sales agent, with the group whose transactions first use it and the
    group whose file first lists it (later than first use for the late-announced one)."""

    row: list[str]  # as written in its file, id first
    first_use: int
    announced: int


@dataclass
class _Customer:
    fname: str
    lname: str
    domain: str

    @property
    def email(self) -> str:
        """The clean email; follows the name, so a renamed customer gets a new one."""
        return f"{self.fname.lower()}.{self.lname.lower()}@{self.domain}"


def _schedule(
    rng: random.Random, rows: list[list[str]], groups: int, arriving: int
) -> list[_Member]:
    """Known from group 1, except one used in group 1 but announced from group 2 on and
    `arriving` members that show up (announced and used) in a later group."""
    late = len(rows) - arriving - 1
    second = min(2, groups)
    members = []
    for index, row in enumerate(rows):
        if index < late:
            first_use = announced = 1
        elif index == late:
            first_use, announced = 1, second
        else:
            first_use = announced = rng.randint(second, groups)
        members.append(_Member(row, first_use, announced))
    return members


def _other(rng: random.Random, options: list[str], current: str) -> str:
    """A random option that differs from current: a change must be a change."""
    return rng.choice([option for option in options if option != current])


def _dirty(rng: random.Random, name: str) -> str:
    """A name as the source now and then writes it: lower-case, UPPER or padded with spaces."""
    roll = rng.random()
    if roll < 0.1:
        return name.lower()
    if roll < 0.2:
        return name.upper()
    if roll < 0.25:
        return f" {name}"
    if roll < 0.3:
        return f"{name}  "
    return name


def _plant(rng: random.Random, values: list, required: list) -> list:
    """Put each required value at its own random position, so every group big enough to
    hold them all shows each one at least once; random picks can't promise that."""
    if len(values) >= len(required):
        positions = rng.sample(range(len(values)), len(required))
        for position, value in zip(positions, required, strict=True):
            values[position] = value
    return values


def _spoil(rng: random.Random, row: list[str], defect: str) -> None:
    """Break a row the way the source does about once in 500 rows."""
    if defect == "multiple_offers":
        offers = [""] * 5
        for k in rng.sample(range(5), 2):
            offers[k] = "True"
        row[OFFERS] = offers
    elif defect == "bad_units":
        row[COLUMN["units"]] = str(rng.randint(-5, 0))
    else:
        row[COLUMN["transaction_date"]] = rng.choice(BAD_DATES)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


class _Source:
    """The source system's state across groups: who exists, what each file has announced,
    whose attributes changed, and the next transaction id."""

    def __init__(self, rng: random.Random, groups: int):
        self.rng = rng
        self.next_id = FIRST_TRANSACTION_ID
        branch_rows = [
            [str(n), location, rng.choice(ESTABLISH_DAYS), rng.choice("ABC")]
            for n, location in enumerate(BRANCH_LOCATIONS, start=1)
        ]
        agent_names = zip(
            rng.sample(FIRST_NAMES, AGENTS), rng.sample(LAST_NAMES, AGENTS), strict=True
        )
        agent_rows = [
            [str(n), f"{first} {last}", rng.choice(HIRE_DAYS)]
            for n, (first, last) in enumerate(agent_names, start=1)
        ]
        self.branches = _schedule(rng, branch_rows, groups, arriving=2)
        self.agents = _schedule(rng, agent_rows, groups, arriving=4)
        self.customers = {
            str(10_001 + n): _Customer(
                rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), rng.choice(DOMAINS)
            )
            for n in range(CUSTOMER_POOL)
        }
        self.renamed: list[str] = []
        self.last_customers: list[str] = []

    def write_group(self, folder: Path, group: int, rows: int) -> None:
        if group > 1:
            self._change_attributes()
        folder.mkdir(parents=True, exist_ok=True)
        for name, header, members in [
            ("branches", BRANCH_HEADER, self.branches),
            ("sales_agents", AGENT_HEADER, self.agents),
        ]:
            listed = [member.row for member in members if member.announced <= group]
            _write(folder / f"{name}_SS_raw_{group}.csv", header, listed)
        transactions = self._transactions(group, rows)
        _write(folder / f"sales_transactions_SS_raw_{group}.csv", TRANSACTION_HEADER, transactions)

    def _change_attributes(self) -> None:
        """Between groups one agent's hire date is corrected and a few customers seen in the
        previous group change a name (their email follows); the renamed must reappear."""
        rng = self.rng
        agent = rng.choice([member for member in self.agents if member.announced == 1])
        agent.row[2] = _other(rng, HIRE_DAYS, agent.row[2])  # hire_date
        seen = list(dict.fromkeys(self.last_customers))
        self.renamed = rng.sample(seen, min(RENAMES_PER_GROUP, len(seen)))
        for customer_id in self.renamed:
            customer = self.customers[customer_id]
            if rng.random() < 0.5:
                customer.fname = _other(rng, FIRST_NAMES, customer.fname)
            else:
                customer.lname = _other(rng, LAST_NAMES, customer.lname)

    def _in_use(self, members: list[_Member], group: int) -> list[str]:
        return [member.row[0] for member in members if member.first_use <= group]

    def _transactions(self, group: int, rows: int) -> list[list[str]]:
        """Draw the per-row choices that must cover something (tails, defects, addresses,
        branches, agents, renamed customers) up front, then build the rows in one pass."""
        rng = self.rng
        online = [rng.random() < ONLINE_SHARE for _ in range(rows)]
        online_rows = sum(online)
        offline_rows = rows - online_rows
        regulars = rng.sample(list(self.customers), CUSTOMERS_PER_GROUP)
        customers = _plant(rng, [rng.choice(regulars) for _ in range(rows)], self.renamed)
        tails = _plant(rng, [rng.choice(EMAIL_TAILS) for _ in range(rows)], EMAIL_TAILS)
        defects = _plant(
            rng,
            [rng.choice(DEFECTS) if rng.random() < DEFECT_RATE else None for _ in range(rows)],
            DEFECTS if rows >= DEFECTS_GUARANTEED_FROM else [],
        )
        addresses = iter(
            _plant(rng, [rng.choice(ADDRESSES) for _ in range(online_rows)], ADDRESSES)
        )
        branch_ids = self._in_use(self.branches, group)
        agent_ids = self._in_use(self.agents, group)
        branches = iter(
            _plant(rng, [rng.choice(branch_ids) for _ in range(offline_rows)], branch_ids)
        )
        agents = iter(_plant(rng, [rng.choice(agent_ids) for _ in range(offline_rows)], agent_ids))

        table = []
        draws = zip(online, customers, tails, defects, strict=True)
        for is_online, customer_id, tail, defect in draws:
            customer = self.customers[customer_id]
            product_id, product_name, category, price = rng.choice(PRODUCTS)
            offers = [""] * 5
            if rng.random() < OFFER_SHARE:
                offers[rng.randrange(5)] = "True"
            row = [
                rng.choice(TRANSACTION_DAYS),
                str(self.next_id),
                customer_id,
                _dirty(rng, customer.fname),
                _dirty(rng, customer.lname),
                customer.email + tail,
                "" if is_online else next(agents),
                "" if is_online else next(branches),
                product_id,
                product_name,
                category,
                *offers,
                rng.choice(UNITS),
                price,
            ]
            if is_online:
                row += ["yes", rng.choice(ONLINE_PAYMENTS), next(addresses)]
            else:
                row += ["no", rng.choice(OFFLINE_PAYMENTS)]
            if defect:
                _spoil(rng, row, defect)
            table.append(row)
            self.next_id += 1
        self.last_customers = customers
        return table


def generate(out_dir: str | Path, groups: int, rows: int, seed: int) -> list[Path]:
    """Write out_dir/group1..group{groups}, `rows` transactions each, and return the folders.

    With 3 or more groups, group{groups-1} is a byte-identical copy of group{groups-2}
    (file names included): the source re-pushing a group it already sent.
    """
    source = _Source(random.Random(seed), groups)
    folders = []
    for group in range(1, groups + 1):
        folder = Path(out_dir) / f"group{group}"
        if groups >= 3 and group == groups - 1:
            shutil.copytree(folders[-1], folder, dirs_exist_ok=True)
        else:
            source.write_group(folder, group, rows)
        folders.append(folder)
    return folders
