"""A built-in table of dense frontier language models, typed in from their papers, so that the trends
analysis runs with no data files at all.

Each entry holds what the cited source states: release date (first public release or announcement),
total parameters N, pre-training tokens D, and training compute C when the source states it
(`compute_basis="reported"`); otherwise C is 6·N·D (`compute_basis="6ND"`), the same convention as the
rest of this project. Models whose size or token count was never published (GPT-4, Claude, Gemini, PaLM 2)
are left out rather than guessed, and so are mixture-of-experts models (N is ambiguous for them).
Numbers were cross-checked against Epoch AI's notable-models database (its notes quote the same sources).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class FrontierModel:
    name: str
    organization: str
    date: str  # ISO date of first public release or announcement
    params: float  # N, total parameters
    tokens: float  # D, pre-training tokens
    compute: float | None  # training FLOP as stated by the source; None -> 6ND
    citation: str

    @property
    def compute_basis(self) -> str:
        return "reported" if self.compute is not None else "6ND"

    @property
    def training_compute(self) -> float:
        return self.compute if self.compute is not None else 6.0 * self.params * self.tokens


FRONTIER_MODELS: tuple[FrontierModel, ...] = (
    FrontierModel("GPT-3 175B", "OpenAI", "2020-05-28", 175e9, 300e9, 3.14e23,
                  "Brown et al. 2020, Language Models are Few-Shot Learners, arXiv:2005.14165 (Table D.1)"),
    FrontierModel("Megatron-Turing NLG 530B", "Microsoft, NVIDIA", "2021-10-11", 530e9, 270e9, None,
                  "Smith et al. 2022, Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, "
                  "arXiv:2201.11990"),
    FrontierModel("Gopher 280B", "DeepMind", "2021-12-08", 280e9, 300e9, 6.31e23,
                  "Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher, "
                  "arXiv:2112.11446 (Table A26)"),
    FrontierModel("Chinchilla 70B", "DeepMind", "2022-03-29", 70e9, 1.4e12, 5.76e23,
                  "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv:2203.15556 "
                  "(Tables 1 and 3)"),
    FrontierModel("PaLM 540B", "Google", "2022-04-04", 540e9, 780e9, None,
                  "Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways, arXiv:2204.02311"),
    FrontierModel("BLOOM 176B", "BigScience", "2022-07-11", 176e9, 366e9, None,
                  "BigScience Workshop 2022, BLOOM: A 176B-Parameter Open-Access Multilingual Language Model, "
                  "arXiv:2211.05100"),
    FrontierModel("LLaMA 65B", "Meta AI", "2023-02-24", 65.2e9, 1.4e12, None,
                  "Touvron et al. 2023, LLaMA: Open and Efficient Foundation Language Models, arXiv:2302.13971"),
    FrontierModel("Llama 2 70B", "Meta AI", "2023-07-18", 70e9, 2.0e12, None,
                  "Touvron et al. 2023, Llama 2: Open Foundation and Fine-Tuned Chat Models, arXiv:2307.09288"),
    FrontierModel("Falcon 180B", "Technology Innovation Institute", "2023-09-06", 180e9, 3.5e12, 3.76e24,
                  "Almazrouei et al. 2023, The Falcon Series of Open Language Models, arXiv:2311.16867 "
                  "(Table 1: 43,500 PF-days)"),
    FrontierModel("Llama 3 8B", "Meta AI", "2024-04-18", 8.0e9, 15e12, None,
                  "Llama Team 2024, The Llama 3 Herd of Models, arXiv:2407.21783"),
    FrontierModel("Llama 3 70B", "Meta AI", "2024-04-18", 70e9, 15e12, None,
                  "Llama Team 2024, The Llama 3 Herd of Models, arXiv:2407.21783"),
    FrontierModel("Nemotron-4 340B", "NVIDIA", "2024-06-14", 340e9, 9e12, None,
                  "NVIDIA 2024, Nemotron-4 340B Technical Report, arXiv:2406.11704"),
    FrontierModel("Gemma 2 27B", "Google DeepMind", "2024-06-27", 27e9, 13e12, None,
                  "Gemma Team 2024, Gemma 2: Improving Open Language Models at a Practical Size, "
                  "arXiv:2408.00118"),
    FrontierModel("Llama 3.1 405B", "Meta AI", "2024-07-23", 405e9, 15.6e12, 3.8e25,
                  "Llama Team 2024, The Llama 3 Herd of Models, arXiv:2407.21783"),
    FrontierModel("Qwen2.5 72B", "Alibaba", "2024-09-19", 72.7e9, 18e12, None,
                  "Qwen Team 2024, Qwen2.5 Technical Report, arXiv:2412.15115"),
)


def frontier_table(models: tuple[FrontierModel, ...] = FRONTIER_MODELS) -> pd.DataFrame:
    """The built-in table as a frame shaped like `loaders.load_notable_models` output (plus tokens)."""
    from analysis.trends.loaders import decimal_year

    frame = pd.DataFrame({
        "model": [m.name for m in models],
        "organization": [m.organization for m in models],
        "date": pd.to_datetime([m.date for m in models]),
        "params": [m.params for m in models],
        "tokens": [m.tokens for m in models],
        "compute": [m.training_compute for m in models],
        "compute_basis": [m.compute_basis for m in models],
        "citation": [m.citation for m in models],
    })
    frame["year"] = decimal_year(frame["date"])
    frame["frontier"] = True
    frame["language"] = True
    return frame.sort_values("date").reset_index(drop=True)
