"""The mode-collapse bandit of Section 5.2 ("Creativity Has Left the Chat", Mohammadi 2024).

``rules`` holds the update rules as pure numpy functions (the paper's advantage rule, ACTDE, REINFORCE
with a learned baseline, a PPO-style clipped update with the KL penalty of Eq. 5.2, and the closed-form
KL-regularised optimum); ``table1`` replays the paper's Table 1; ``simulate`` runs the rules on sampled
actions over many seeds at once; ``figures`` draws them. Run it with ``python -m toy_bandit``.
This package imports neither ``measure`` nor ``rlhf``.
"""
