"""A scripted backend for unit tests: completions are a function of the prompt."""


class Scripted:
    """A backend whose completions are ``reply(prompt, i)``; it records every prompt."""

    name = "scripted"

    def __init__(self, reply):
        self.reply, self.prompts = reply, []

    def load(self, model_path, position_tracker=None):
        pass

    def sample(self, prompts, n, *, temperature, top_p=1.0, max_new_tokens, seed, desc=""):
        self.prompts += prompts
        return [[self.reply(p, i) for i in range(n)] for p in prompts]
