"""Write the bundled demo sample: a few hundred SMS-style messages, written for spamops.

The messages are composed from hand-written templates (no third-party data), with
the shape of real SMS traffic: most messages are short personal ham, about one in
five is spam, and spam is longer and carries more punctuation (prices, URLs,
codes), with some overlap so the classifier has real work to do.

Usage: python scripts/make_demo_data.py [OUT.csv]   (default: the packaged copy)
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "spamops" / "training" / "demo" / "sms_demo.csv"
SEED = 20251119
HAM_COUNT, SPAM_COUNT = 320, 80

NAMES = ["Sam", "Priya", "Tom", "Aisha", "Leo", "Mia", "Jon", "Nora", "Raj", "Eva", "mum", "dad"]
PLACES = ["the station", "home", "the office", "Tesco", "the gym", "uni", "the pub", "work", "town"]
TIMES = ["5", "6", "7.30", "8", "10", "noon", "later", "tonight", "tmrw", "after lunch"]
HAM = [
    "Ok see you at {time}",
    "Where are you",
    "I'm at {place}, be there in 10",
    "Can you pick up milk on the way home",
    "Running late, sorry!",
    "Haha yes that was so funny",
    "Did you get my email about the meeting",
    "Call me when you're free",
    "Happy birthday {name}! Have a lovely day x",
    "K. Will text you when I'm done",
    "What time is dinner",
    "Thanks for today, had a great time",
    "Are we still on for {time}?",
    "Just got home. Tired lol",
    "Don't forget your keys again",
    "{name} says hi",
    "Can't talk now, in a meeting. Will call after",
    "Yup I'm coming",
    "Is it raining there? Bring an umbrella",
    "Lunch at {place} at {time}?",
    "I love you too. Sleep well",
    "Send me the photos from yesterday pls",
    "My phone died, sorry I missed your call",
    "Good luck with the exam tomorrow, you'll be fine",
    "Leaving {place} now",
    "Oh no what happened",
    "That's fine, no worries",
    "Tell {name} I said thanks",
    "Sure, sounds good",
    "Have you eaten",
    "hey whats up",
    "Meet you outside {place}",
    "I'll be there by {time}, save me a seat",
    "Did {name} call you back? She was asking about the weekend and whether we still need the car",
    "Train is delayed again... should be home around {time}. Start dinner without me if you're hungry",
    "Remember we have the dentist on Friday at {time}, don't book anything else",
    "lol",
    "ok",
    "Going to sleep now. Night!",
    "Can you check if I left my wallet at {place}?",
]
PRIZES = ["£1000 cash", "a FREE iPhone", "£500 Tesco voucher", "a 2-week holiday", "£250 prize", "a Nokia camcorder"]
CODES = ["WIN", "CLAIM", "PRIZE", "GO", "YES", "STOP"]
SPAM = [
    "URGENT! You have won {prize}. To claim call 09061{num} now. T&Cs apply. 150p/min, 16+ only.",
    "FREE entry into our weekly comp to win {prize}! Text {code} to 8{num} to receive entry. Std txt rate. T&C's apply.",
    "Congratulations! You've been selected for {prize}. Reply {code} to claim before it expires. www.winnow.co.uk/{num}",
    "SIX chances to win CASH! From 100 to 20,000 pounds txt> {code} to 8{num}. Cost 150p/day, 6days, 16+ TsandCs apply.",
    "Your mobile number has won {prize}! Call 0800-{num} (free) or visit claim-now.com quoting ref {code}{num}.",
    "Had your mobile 11 months or more? U R entitled to update to the latest colour mobiles with camera for Free! Call 08002{num}",
    "WINNER!! As a valued network customer you have been selected to receive {prize}. To claim call 09061{num}. Valid 12 hrs.",
    "Dear customer, your account is on hold. Verify now at secure-bank-update.com/{num} to avoid suspension!!",
    "Get {prize} today - no purchase needed! Text {code} to 6{num}. £1.50/msg. Opt out: txt STOP.",
    "You have 1 new voicemail. Please call 09056{num} to listen. Calls cost 60p/min.",
    "Last chance: {prize} waiting for you, reply {code} now",
    "Free ringtone! Text {code} to 8{num}",
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        name=rng.choice(NAMES),
        place=rng.choice(PLACES),
        time=rng.choice(TIMES),
        prize=rng.choice(PRIZES),
        code=rng.choice(CODES),
        num=rng.randint(1000, 99999),
    )


def rows(seed: int = SEED) -> list[tuple[str, str]]:
    """The demo rows, deterministic for a seed."""
    rng = random.Random(seed)
    data = [("ham", _fill(rng.choice(HAM), rng)) for _ in range(HAM_COUNT)]
    data += [("spam", _fill(rng.choice(SPAM), rng)) for _ in range(SPAM_COUNT)]
    rng.shuffle(data)
    return data


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "message"])
        writer.writerows(rows())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
