"""Local model helpers: the offline tiny Qwen3 (``tiny``), the shipped demo base and its tokenizer
(``demo_base``) and the no-repeat n-gram ban (``ngram``)."""
