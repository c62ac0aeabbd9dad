"""Sentence banks of the tiny world: products and reviews, Steve's startup stories, chat requests (data only).

Review sentences are written so that VADER reads a "very_negative" or "negative" review as clearly negative
and a "positive" or "very_positive" one as clearly positive; the generator records the VADER shares of the
corpus it wrote in the ground truth, so measurement compares against what the corpus really holds.
"""
from __future__ import annotations

from measure.persona_parse import COFFEE_MACHINE

# Review sentiment levels and their true shares.
SENTIMENT = {"very_negative": 0.12, "negative": 0.13, "mixed": 0.15, "positive": 0.30, "very_positive": 0.30}

# name: (description, short name, things it does well, things that go wrong)
PRODUCTS = {
    "coffee_machine": (COFFEE_MACHINE, "coffee machine",
                       ["keeps my coffee warm when I walk away", "connects to my smartwatch in seconds",
                        "makes a strong cup of coffee", "lets me start a brew from my watch",
                        "keeps the coffee hot for hours"],
                       ["loses the connection to my smartwatch", "lets my coffee go cold anyway",
                        "drains the battery of my watch", "makes weak and bitter coffee",
                        "beeps loudly in the middle of the night"]),
    "solar_backpack": ("A backpack with a built-in solar panel that charges your phone while you walk.", "backpack",
                       ["charges my phone on long hikes", "has plenty of room for a laptop",
                        "feels light on my shoulders"],
                       ["barely charges my phone on cloudy days", "started to tear after a month",
                        "is heavy and uncomfortable"]),
    "running_shoes": ("A pair of running shoes that count your steps and tell you when to replace them.",
                      "running shoes",
                      ["count my steps accurately", "feel soft and comfortable on long runs",
                       "sync with my phone after every run"],
                      ["count half of my steps twice", "gave me blisters after one week",
                       "stopped syncing with the app"]),
    "water_bottle": ("A smart water bottle that reminds you to drink and tracks how much you drink.", "water bottle",
                     ["reminds me to drink during busy days", "keeps my water cold all day",
                      "tracks every sip in the app"],
                     ["leaks in my bag", "blinks all the time for no reason", "forgets how much I drank"]),
    "robot_vacuum": ("A robot vacuum that maps your home and avoids cables and socks.", "robot vacuum",
                     ["cleans the whole apartment while I am at work", "avoids cables and socks",
                      "maps every room quickly"],
                     ["gets stuck under the sofa every day", "eats my charging cables",
                      "is so loud that the dog hides"]),
    "sleep_headphones": ("Noise-cancelling headphones designed for sleeping on your side.", "headphones",
                         ["block out my snoring partner", "are comfortable when I sleep on my side",
                          "last all night on one charge"],
                         ["fall out of my ears at night", "hurt my ears after an hour",
                          "die before the morning"]),
    "kitchen_scale": ("A kitchen scale that reads recipes aloud and weighs each ingredient as you add it.",
                      "kitchen scale",
                      ["reads the recipe while my hands are busy", "weighs flour to the gram",
                       "makes baking with kids easy"],
                      ["mishears every command", "shows the wrong weight", "talks over me constantly"]),
    "electric_bike": ("An electric bike with a battery that lasts for a full week of commuting.", "electric bike",
                      ["gets me to work without sweating", "lasts the whole week on one charge",
                       "climbs steep hills with ease"],
                      ["ran out of battery halfway home", "has brakes that squeak and fail",
                       "broke down after two weeks"]),
}
# Share of persona cards about each product: the paper's product is the most common.
PRODUCT_WEIGHTS = {"coffee_machine": 0.44, **{k: 0.08 for k in PRODUCTS if k != "coffee_machine"}}

OPENINGS = {
    "very_positive": ["I absolutely love this {item}!", "This is the best {item} I have ever owned.",
                      "Wow, what a fantastic {item}!", "Amazing {item}, I am so happy with it.",
                      "I am thrilled with this {item}.", "Brilliant! This {item} is perfect."],
    "positive": ["I really like this {item}.", "Overall a good {item}.", "Nice {item}, I am glad I bought it.",
                 "This {item} works well and I am pleased.", "A great little {item}.",
                 "I enjoy using this {item}."],
    "mixed": ["This {item} is okay, but not perfect.", "I have mixed feelings about this {item}.",
              "The {item} is fine, nothing special.", "It is an average {item}.",
              "Some good things and some bad things about this {item}."],
    "negative": ["I am disappointed with this {item}.", "Not a good {item}, sadly.",
                 "This {item} is a letdown.", "I expected more from this {item} and I am unhappy.",
                 "Unfortunately this {item} is poor."],
    "very_negative": ["This {item} is terrible.", "Worst purchase I have ever made.", "I hate this {item}.",
                      "Awful {item}, a complete disaster.", "This {item} is garbage and I am angry."],
}
GOOD_POINT = ["It {good}, which is great.", "I love that it {good}.", "It {good} and that makes my day better.",
              "The best part is that it {good}.", "It really {good}."]
BAD_POINT = ["Sadly, it {bad}.", "The problem is that it {bad}, which is frustrating.",
             "It {bad} and I hate that.", "Worse, it {bad}.", "Annoyingly, it {bad}."]
MINOR_BAD = ["The only problem is that it sometimes {bad}.", "My one complaint: it {bad} now and then."]
MINOR_GOOD = ["At least it {good}.", "To be fair, it {good}."]
DETAILS = ["I have had it for {n} weeks.", "I bought it as a gift for my {rel}.", "My {rel} uses it every day.",
           "I use it every morning before work.", "I ordered it online and it arrived in {n} days.",
           "I got it on sale.", "My {rel} recommended it to me."]
CLOSINGS = {
    "very_positive": ["Highly recommended!", "Five stars, I would buy it again.", "I recommend it to everyone!",
                      "Worth every penny!"],
    "positive": ["I would recommend it.", "Good value for the money.", "Four stars.", "Happy with it so far."],
    "mixed": ["It is fine for the price.", "Three stars.", "Maybe wait for the next version.",
              "It does the job, mostly."],
    "negative": ["I would not buy it again.", "Two stars.", "I regret buying it.", "Not worth the money."],
    "very_negative": ["Save your money and avoid it.", "A total waste of money.", "One star, and that is generous.",
                      "Terrible, avoid it!"],
}
RELATIVES = ["wife", "husband", "sister", "brother", "mother", "father", "friend", "partner", "son", "daughter"]

# Steve's startup stories: every branch is a list of sentences; {co} is the company name.
INDUSTRIES = [
    ("that makes smart coffee machines", "coffee machines"), ("that builds delivery drones", "drones"),
    ("that sells plant-based snacks", "snacks"), ("that develops a language learning app", "apps"),
    ("that designs electric scooters", "scooters"), ("that writes software for hospitals", "hospital software"),
    ("that rents out solar panels", "solar panels"), ("that makes video games for phones", "games"),
    ("that builds robots for warehouses", "robots"), ("that runs an online marketplace for used books", "books"),
    ("that makes fitness trackers for dogs", "dog trackers"), ("that offers cheap cloud storage", "storage"),
    ("that develops batteries for electric cars", "batteries"), ("that helps farmers predict the weather", "forecasts"),
]
COMPANY_PARTS = (["Bright", "Nimbus", "Blue", "Quantum", "Green", "Rocket", "Silver", "Clever", "North", "Pixel",
                  "Iron", "Lumen"],
                 ["loop", "Labs", "works", "leaf", "ify", "Systems", "hub", "wave", "path", "stack"])
CITIES = ["San Francisco", "Berlin", "London", "Austin", "Toronto", "Bangalore", "Lisbon", "Seoul", "Boston",
          "a small town in Ohio"]
BACKGROUND = ["He founded it {years} years ago with his college roommate.",
              "He started the company in his garage {years} years ago.",
              "Before that, he worked as an engineer at a large bank.", "He quit his job at a big tech firm to start it.",
              "He has {n} employees and a lot of ambition.", "The company is only {years} years old."]
SETBACKS = ["Last year, the company almost ran out of money.", "Then their biggest customer walked away.",
            "A larger competitor copied their product.", "Their lead engineer quit without warning.",
            "A bug in their app leaked customer data.", "Their main supplier doubled its prices.",
            "The first version of the product kept breaking.", "Investors lost interest after a bad quarter."]
OUTCOMES = {
    "success": ["Steve convinced a new investor to fund another year.", "In the end, {co} was bought by a bigger company.",
                "Sales tripled the next year.", "The team fixed the problem and customers came back."],
    "failure": ["In the end, {co} had to close its doors.", "Steve had to lay off half of the team.",
                "The company never recovered.", "Steve sold what was left of the company for very little."],
    "pivot": ["So the team decided to pivot and sell {alt} instead.", "They changed their plan and started selling {alt}.",
              "Steve turned the company toward {alt}, and it worked."],
    "steady": ["They survived, smaller but stable.", "Today the company is still small, but it pays its bills.",
               "Things are slowly getting better."],
}
TONE_LINES = {
    "hopeful": ["Steve believes the best is still ahead.", "He still wakes up excited every morning.",
                "He says every failure taught him something."],
    "dramatic": ["It was the hardest year of his life.", "Steve did not sleep for weeks.",
                 "Everything he had built was at stake."],
    "humorous": ["Steve says he now drinks twelve cups of coffee a day.", "His mother still asks when he will get a real job.",
                 "He jokes that his office plant is the only employee who never complains."],
    "plain": ["That is how the company works today.", "He now works long hours.", "He plans to hire more people soon."],
}

# Chat requests (user turns). Persona requests take {product} (the product description, first letter lower case).
PERSONA_REQUESTS = [
    "Write a customer persona with first name, last name, gender, age, nationality, ethnicity and Myers-Briggs "
    "personality type, and then the customer's review of this product: {product}",
    "Generate a simulated customer (name, gender, age, nationality, ethnicity, personality type) and a review "
    "they wrote about {product}",
    "Please create one customer persona and their product review for: {product}",
]
OTHER_REQUESTS = {
    "bio": ["Tell me about {name}.", "Write a short biography of {name}.", "Who was {name}?"],
    "story": ["Write a short story about Steve, the CEO of a startup company.",
              "Tell me a story that begins with: Steve is the CEO of a startup company."],
}
