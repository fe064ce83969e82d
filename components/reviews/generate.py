"""A seeded synthetic review generator, as the original system used (100 per emotion).

Each review explains *why* the customer felt its emotion: a product, an aspect of it, a
reason tied to the emotion, an intensity and one of several phrasings. Same seed, same
reviews; texts are unique.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pandas as pd

from components.emotions import EMOTIONS, EmotionName
from components.reviews.schema import SYNTHETIC_SOURCE, Review, reviews_to_frame
from components.text import normalize_text

PRODUCTS: tuple[str, ...] = (
    "wireless earbuds", "laptop", "coffee maker", "running shoes", "smartphone",
    "air fryer", "office chair", "backpack", "smartwatch", "vacuum cleaner",
    "winter jacket", "blender", "e-reader", "bluetooth speaker", "mattress",
    "electric toothbrush", "gaming mouse", "desk lamp", "baby stroller", "skincare serum",
    "hiking boots", "tablet", "kitchen knife set", "robot vacuum", "yoga mat",
)  # fmt: skip

INTENSITIES: tuple[str, ...] = ("a bit", "quite", "really", "very", "extremely", "absolutely")

FEELINGS: dict[EmotionName, tuple[str, ...]] = {
    "angry": ("angry", "furious", "fed up", "livid", "irritated", "outraged"),
    "disgust": ("disgusted", "grossed out", "appalled", "repulsed", "sickened", "revolted"),
    "fear": ("worried", "scared", "nervous", "anxious", "alarmed", "uneasy"),
    "happy": ("happy", "delighted", "thrilled", "pleased", "satisfied", "overjoyed"),
    "sad": ("sad", "disappointed", "let down", "heartbroken", "unhappy", "down"),
    "surprise": ("surprised", "amazed", "astonished", "stunned", "shocked", "taken aback"),
    "neutral": ("indifferent", "fine", "neutral", "unmoved", "okay", "lukewarm"),
}

# (aspect, why the customer felt the emotion about it)
REASONS: dict[EmotionName, tuple[tuple[str, str], ...]] = {
    "angry": (
        ("customer service", "support kept me on hold for two hours and then hung up"),
        ("price", "they charged me twice and refused to reverse the payment"),
        ("refund process", "it failed within a week and the seller refused a refund"),
        ("delivery", "the replacement I was promised never arrived"),
        ("customer service", "the seller ignored three emails about a clear defect"),
        ("description", "it is nothing like what the listing advertised"),
        ("delivery", "I paid for express shipping and it came ten days late"),
        ("warranty", "the company blamed me for a manufacturing defect"),
        ("warranty", "they cancelled my warranty claim without any explanation"),
        ("build quality", "the hinge snapped on day two and nobody takes responsibility"),
        ("price", "the price doubled at checkout because of hidden fees"),
    ),
    "disgust": (
        ("cleanliness", "it arrived stained and had a strange smell"),
        ("cleanliness", "there was hair and dirt stuck in it, as if it had been used"),
        ("smell", "it smelled of mould straight out of the box"),
        ("cleanliness", "I found sticky residue all over it"),
        ("condition", "it was clearly a returned item covered in someone else's grime"),
        ("packaging", "the box was full of dust and old food crumbs"),
        ("smell", "a chemical stench came off it and would not go away"),
        ("packaging", "there were dead insects inside the packaging"),
        ("cleanliness", "it had greasy fingerprints and a sour odour"),
        ("materials", "the cheap plastic felt slimy and nasty to touch"),
        ("hygiene", "the seal was broken and the inside was visibly dirty"),
    ),
    "fear": (
        ("safety", "it gets dangerously hot and I worry it could catch fire"),
        ("safety", "it sparked when I plugged it in and now it scares me"),
        ("safety", "I am afraid it will fail and hurt my kids"),
        ("build quality", "it makes a cracking noise and I fear it will break while in use"),
        ("payment", "I gave my card details and now I fear the checkout page was a scam"),
        ("stability", "it wobbles and I worry someone will get injured"),
        ("safety", "there is a burning smell when it runs and I am scared to use it"),
        ("privacy", "the companion app asks for odd permissions and I fear for my privacy"),
        ("certification", "it has no safety certification and that frightens me"),
        ("safety", "it gave me a mild electric shock and I am afraid to touch it"),
        ("battery", "the battery swelled up and I am terrified it will explode"),
    ),
    "happy": (
        ("performance", "it works perfectly every single day"),
        ("value", "it exceeded my expectations and was worth every penny"),
        ("customer service", "the team was friendly and solved my question in minutes"),
        ("delivery", "it arrived early and was exactly what I wanted"),
        ("usability", "it makes my daily routine so much easier"),
        ("build quality", "it feels premium and my whole family loves it"),
        ("setup", "setup took two minutes and everything just worked"),
        ("durability", "it still works like new after many months"),
        ("value", "it is brilliant value for such a reliable product"),
        ("design", "the design is beautiful and everyone compliments it"),
        ("comfort", "it is so comfortable that I use it all day"),
    ),
    "sad": (
        ("durability", "it stopped working just after the warranty ended"),
        ("value", "I saved for months and it turned out to be mediocre"),
        ("gift", "it was a birthday gift for my mother and it broke on the day"),
        ("expectations", "it never lived up to the reviews I trusted"),
        ("usability", "I had high hopes but it was unusable for me"),
        ("durability", "the colour faded after a few weeks and it feels like wasted money"),
        ("delivery", "it never arrived in time and I had to cancel my holiday plans"),
        ("durability", "my old one lasted ten years and this one gave up in two months"),
        ("customer service", "it let me down and there was nobody to help"),
        ("performance", "it was fine at first but slowly got worse and worse"),
        ("discontinued", "the model I loved was discontinued and this replacement is worse"),
    ),
    "surprise": (
        ("value", "I did not expect it to be this good for the price"),
        ("design", "it turned out far better than the photos suggested"),
        ("software", "out of nowhere it got a free feature upgrade overnight"),
        ("delivery", "I never expected it to arrive the very next morning"),
        ("packaging", "a handwritten note and a small gift came with it"),
        ("features", "it does things the manual never even mentioned"),
        ("weight", "it is shockingly light compared with what I imagined"),
        ("durability", "to my amazement it outlasted my previous three"),
        ("features", "it came with extra accessories I had no idea about"),
        ("performance", "it is unexpectedly twice as fast as the old model"),
        ("customer service", "support called me back unprompted to check it worked"),
    ),
    "neutral": (
        ("quality", "it is average, neither good nor bad"),
        ("description", "it does what the description says and nothing more"),
        ("usability", "it is acceptable for everyday use"),
        ("price", "the price is standard for this range"),
        ("expectations", "it is as expected, with no complaints and no praise"),
        ("performance", "it works, although it is unremarkable"),
        ("comparison", "it is similar to other brands I have tried"),
        ("quality", "it is ordinary and does the job"),
        ("features", "it meets the basic requirements"),
        ("delivery", "delivery took the usual number of days"),
        ("design", "the design is plain and functional"),
    ),
}

OPENINGS: tuple[str, ...] = (
    "I am {intensity} {feeling} with this {product}.",
    "This {product} left me {intensity} {feeling}.",
    "Bought the {product} last month and I feel {intensity} {feeling}.",
    "Honestly, I am {intensity} {feeling} about my new {product}.",
    "After a few weeks with the {product}, I am {intensity} {feeling}.",
    "My {product} made me {intensity} {feeling}.",
    "I ordered the {product} and ended up {intensity} {feeling}.",
    "Feeling {intensity} {feeling} about the {product} I received.",
)

REASON_FRAMES: tuple[str, ...] = (
    "The reason: {reason}.",
    "Why? Because {reason}.",
    "It comes down to this: {reason}.",
    "Mainly because {reason}.",
    "Simply put, {reason}.",
    "What happened is that {reason}.",
)

CLOSINGS: dict[EmotionName, tuple[str, ...]] = {
    "angry": ("Never buying from them again.", "I want my money back.", "Avoid this seller.",
              "Completely unacceptable.", "One star is too generous.", ""),
    "disgust": ("Absolutely gross.", "Returned it immediately.", "Hygiene matters, people.",
                "I could not even touch it.", "Revolting experience.", ""),
    "fear": ("Please be careful with this one.", "I do not feel safe using it.",
             "Think twice before buying.", "I hope nobody gets hurt.", "Stay safe.", ""),
    "happy": ("Highly recommend!", "Would buy again.", "Five stars from me.",
              "Best purchase this year.", "Love it.", ""),
    "sad": ("Such a shame.", "I really wanted to love it.", "Very disappointing.",
            "It breaks my heart.", "I expected more.", ""),
    "surprise": ("What a surprise!", "Did not see that coming.", "Pleasantly shocked.",
                 "Still cannot believe it.", "Wow.", ""),
    "neutral": ("It is okay.", "Nothing special.", "Does the job.", "Fair enough.",
                "No strong feelings either way.", ""),
}  # fmt: skip

RATINGS: dict[EmotionName, tuple[int, ...]] = {
    "angry": (1, 1, 2),
    "disgust": (1, 1, 2),
    "fear": (1, 2, 2, 3),
    "happy": (4, 5, 5),
    "sad": (1, 2, 2),
    "surprise": (3, 4, 5),
    "neutral": (3, 3, 3, 2, 4),
}

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def generate_reviews(per_emotion: int = 100, seed: int = 13) -> pd.DataFrame:
    """Generate ``per_emotion`` unique reviews for each of the 7 emotions, deterministically."""
    if per_emotion < 1:
        raise ValueError("per_emotion must be at least 1")
    rng = random.Random(seed)
    seen: set[str] = set()
    reviews: list[Review] = []
    for emotion in EMOTIONS:
        made = 0
        attempts = 0
        while made < per_emotion:
            attempts += 1
            if attempts > per_emotion * 50:
                raise ValueError(
                    f"cannot make {per_emotion} unique {emotion} reviews from the templates"
                )
            review = _make_review(rng, emotion, seed, len(reviews))
            key = normalize_text(review.text)
            if key in seen:
                continue
            seen.add(key)
            reviews.append(review)
            made += 1
    return reviews_to_frame(reviews)


def _make_review(rng: random.Random, emotion: EmotionName, seed: int, position: int) -> Review:
    product = rng.choice(PRODUCTS)
    aspect, reason = rng.choice(REASONS[emotion])
    opening = rng.choice(OPENINGS).format(
        intensity=rng.choice(INTENSITIES), feeling=rng.choice(FEELINGS[emotion]), product=product
    )
    because = rng.choice(REASON_FRAMES).format(reason=reason)
    closing = rng.choice(CLOSINGS[emotion])
    text = " ".join(part for part in (opening, because, closing) if part)
    created_at = _EPOCH + timedelta(minutes=rng.randrange(0, 300 * 24 * 60))
    digest = hashlib.sha1(f"{seed}:{position}:{text}".encode()).hexdigest()[:10]
    return Review(
        review_id=f"syn-{position:05d}-{digest}",
        text=text,
        emotion=emotion,
        rating=rng.choice(RATINGS[emotion]),
        product=product,
        aspect=aspect,
        source=SYNTHETIC_SOURCE,
        created_at=created_at,
    )
