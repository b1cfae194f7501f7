"""Local model helpers: the offline tiny Qwen3 (``tiny``) and the no-repeat n-gram ban (``ngram``)."""
