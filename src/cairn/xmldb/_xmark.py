"""An XMark-like auction document from a seeded generator (cairn's own; ``xmlgen`` has no
open licence), and the XMark queries the benchmark and its equality test run.

The shape follows the XMark DTD closely enough for Q1, Q2, Q5, Q8, Q9, Q14, Q19 and Q20:
regions with items, categories, people with profiles, open and closed auctions whose
``personref``/``buyer``/``itemref`` point at people and items. Its text is terser than
``xmlgen``'s: ``factor`` 1.0 is about 33 MB (``xmlgen -f 1`` is about 116 MB).
"""

from __future__ import annotations

import random
from xml.sax.saxutils import escape

__all__ = ["QUERIES", "generate"]

_REGIONS = {
    "africa": 0.05,
    "asia": 0.1,
    "australia": 0.1,
    "europe": 0.3,
    "namerica": 0.4,
    "samerica": 0.05,
}
_WORDS = [
    "gold",
    "silver",
    "amber",
    "vessel",
    "honour",
    "duke",
    "kingdom",
    "pleasure",
    "sword",
    "crown",
    "forest",
    "river",
    "merchant",
    "letter",
    "journey",
    "winter",
    "summer",
    "shadow",
    "castle",
    "garden",
    "harbour",
    "lantern",
    "velvet",
    "copper",
    "candle",
    "mirror",
    "orchard",
    "falcon",
    "meadow",
    "thunder",
    "willow",
    "marble",
]
_COUNTRIES = ["United States", "Germany", "France", "Japan", "Brazil", "Kenya", "Australia"]
_CITIES = ["Boston", "Lyon", "Kyoto", "Recife", "Nairobi", "Perth", "Leipzig"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def generate(factor: float = 0.01, seed: int = 1) -> str:
    """The auction document as text; the same ``factor`` and ``seed`` give the same bytes."""
    rng = random.Random(seed)
    items = max(6, int(21750 * factor))
    people = max(4, int(25500 * factor))
    opened = max(2, int(12000 * factor))
    closed = max(2, int(9750 * factor))
    cats = max(2, int(1000 * factor))
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n<site>\n<regions>\n']
    item_no = 0
    for region, share in _REGIONS.items():
        out.append(f"<{region}>\n")
        for _ in range(max(1, int(items * share))):
            desc = _text(rng, rng.randint(8, 40))
            if rng.random() < 0.5:
                body = f"<text>{desc}</text>"
            else:
                body = (
                    "<parlist>"
                    + "".join(
                        f"<listitem><text>{_text(rng, rng.randint(4, 15))}</text></listitem>"
                        for _ in range(rng.randint(1, 3))
                    )
                    + "</parlist>"
                )
            mails = "".join(
                f"<mail><from>{_text(rng, 2)}</from><to>{_text(rng, 2)}</to>"
                f"<date>{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2000</date>"
                f"<text>{_text(rng, rng.randint(5, 20))}</text></mail>"
                for _ in range(rng.randint(0, 2))
            )
            out.append(
                f'<item id="item{item_no}"><location>{rng.choice(_COUNTRIES)}</location>'
                f"<quantity>{rng.randint(1, 3)}</quantity><name>{_text(rng, 3)}</name>"
                f"<payment>Creditcard, Cash</payment><description>{body}</description>"
                f"<shipping>Will ship internationally</shipping>"
                f'<incategory category="category{rng.randrange(cats)}"/>'
                f"<mailbox>{mails}</mailbox></item>\n"
            )
            item_no += 1
        out.append(f"</{region}>\n")
    out.append("</regions>\n<categories>\n")
    for c in range(cats):
        out.append(
            f'<category id="category{c}"><name>{_text(rng, 2)}</name>'
            f"<description><text>{_text(rng, 12)}</text></description></category>\n"
        )
    out.append("</categories>\n<catgraph>\n")
    for _ in range(cats):
        out.append(
            f'<edge from="category{rng.randrange(cats)}" to="category{rng.randrange(cats)}"/>\n'
        )
    out.append("</catgraph>\n<people>\n")
    for p in range(people):
        parts = [
            f'<person id="person{p}"><name>{escape(_text(rng, 2).title())}</name>',
            f"<emailaddress>mailto:p{p}@example.org</emailaddress>",
        ]
        if rng.random() < 0.5:
            parts.append(f"<phone>+{rng.randint(1, 99)} {rng.randint(100000, 999999)}</phone>")
        if rng.random() < 0.5:
            parts.append(
                f"<address><street>{rng.randint(1, 99)} {_text(rng, 1).title()} St</street>"
                f"<city>{rng.choice(_CITIES)}</city><country>{rng.choice(_COUNTRIES)}</country>"
                f"<zipcode>{rng.randint(10000, 99999)}</zipcode></address>"
            )
        if rng.random() < 0.75:
            income = f' income="{rng.uniform(9000, 150000):.2f}"' if rng.random() < 0.75 else ""
            interests = "".join(
                f'<interest category="category{rng.randrange(cats)}"/>'
                for _ in range(rng.randint(0, 3))
            )
            parts.append(
                f"<profile{income}>{interests}<business>{rng.choice(['Yes', 'No'])}</business>"
                f"<age>{rng.randint(18, 80)}</age></profile>"
            )
        parts.append("</person>\n")
        out.append("".join(parts))
    out.append("</people>\n<open_auctions>\n")
    for a in range(opened):
        bidders = "".join(
            f"<bidder><date>{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2001</date>"
            f"<time>{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00</time>"
            f'<personref person="person{rng.randrange(people)}"/>'
            f"<increase>{rng.uniform(1, 50):.2f}</increase></bidder>"
            for _ in range(rng.randint(0, 5))
        )
        out.append(
            f'<open_auction id="open_auction{a}"><initial>{rng.uniform(1, 200):.2f}</initial>'
            f"{bidders}<current>{rng.uniform(1, 400):.2f}</current>"
            f'<itemref item="item{rng.randrange(item_no)}"/>'
            f'<seller person="person{rng.randrange(people)}"/>'
            f"<annotation><description><text>{_text(rng, 10)}</text></description>"
            f"</annotation><quantity>1</quantity><type>Regular</type>"
            f"<interval><start>01/01/2001</start><end>12/31/2001</end></interval>"
            f"</open_auction>\n"
        )
    out.append("</open_auctions>\n<closed_auctions>\n")
    for _ in range(closed):
        out.append(
            f'<closed_auction><seller person="person{rng.randrange(people)}"/>'
            f'<buyer person="person{rng.randrange(people)}"/>'
            f'<itemref item="item{rng.randrange(item_no)}"/>'
            f"<price>{rng.uniform(1, 300):.2f}</price><date>06/15/2001</date>"
            f"<quantity>1</quantity><type>Regular</type>"
            f'<annotation><author person="person{rng.randrange(people)}"/>'
            f"<description><text>{_text(rng, 10)}</text></description>"
            f"<happiness>{rng.randint(1, 10)}</happiness></annotation></closed_auction>\n"
        )
    out.append("</closed_auctions>\n</site>\n")
    return "".join(out)


# The W3C XMark queries, written against the context document (``/site``); cairn runs them
# with ``doc("auction")`` in front (see ``for_document``).
QUERIES: dict[str, str] = {
    "Q1": 'for $b in /site/people/person[@id = "person0"] return $b/name/text()',
    "Q2": "for $b in /site/open_auctions/open_auction "
    "return <increase>{$b/bidder[1]/increase/text()}</increase>",
    "Q5": "count(for $i in /site/closed_auctions/closed_auction "
    "where $i/price/text() >= 40 return $i/price)",
    "Q8": "for $p in /site/people/person "
    "let $a := for $t in /site/closed_auctions/closed_auction "
    "where $t/buyer/@person = $p/@id return $t "
    'return <item person="{$p/name/text()}">{count($a)}</item>',
    "Q9": "for $p in /site/people/person "
    "let $a := for $t in /site/closed_auctions/closed_auction "
    "let $n := for $t2 in /site/regions/europe/item "
    "where $t/itemref/@item = $t2/@id return $t2 "
    "where $p/@id = $t/buyer/@person "
    "return <item>{$n/name/text()}</item> "
    'return <person name="{$p/name/text()}">{$a}</person>',
    "Q14": "for $i in /site//item "
    'where contains(string(exactly-one($i/description)), "gold") '
    "return $i/name/text()",
    "Q19": "for $b in /site/regions//item let $k := $b/name/text() "
    "order by zero-or-one($b/location) ascending empty greatest "
    'return <item name="{$k}">{$b/location/text()}</item>',
    "Q20": "<result><preferred>{count(/site/people/person/profile[@income >= 100000])}"
    "</preferred><standard>{count(/site/people/person/profile[@income < 100000 and "
    "@income >= 30000])}</standard><challenge>{count(/site/people/person/profile"
    "[@income < 30000])}</challenge><na>{count(for $p in /site/people/person "
    "where empty($p/profile/@income) return $p)}</na></result>",
}


def for_document(query: str, name: str = "auction") -> str:
    """The query reading the stored document ``name`` instead of the context item."""
    return query.replace("/site", f'doc("{name}")/site')
