"""The built-in table of frontier language models, so that the trends analysis runs with no data files.

Frontier means Epoch AI's definition: in the top 10 by training compute when published. The rows are every
language model that Epoch's notable-models database (download of 2025-05-22) flags as frontier and that was
published on or after doubling.FRONTIER_LM_SINCE, with Epoch's training-compute estimates, closed models
included (GPT-4 2.1e25 FLOP, Gemini 1.0 Ultra 5e25, ...): the same rows and window as the CSV path, so that
the no-file default is not biased towards the open models that publish their sizes. GPT-3 (2020-05-28) sits
just outside that window, as on the CSV path.

Each row cites the model's own announcement or paper; its training compute is Epoch's estimate
(EPOCH_COMPUTE_SOURCE). `params` is N where published (the total for mixture-of-experts models); `tokens`
is the pre-training token count D only where the model's paper states it for a dense decoder-only model:
the rows with both are the ones that can be placed against a compute-optimal N-D split.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

EPOCH_COMPUTE_SOURCE = ("Epoch AI, 'Data on AI Models', epoch.ai/data/ai-models (notable-models download of "
                        "2025-05-22, CC-BY 4.0)")


@dataclass(frozen=True)
class FrontierLM:
    name: str  # Epoch's model name
    organization: str
    date: str  # ISO publication date, as in Epoch's database
    compute: float  # training FLOP, Epoch's estimate
    params: float | None  # N, total parameters, where published
    tokens: float | None  # D, pre-training tokens, where the paper states them (dense models only)
    citation: str  # the model's own paper or announcement


FRONTIER_LMS: tuple[FrontierLM, ...] = (
    FrontierLM('mT5-XXL', 'Google, Google Research', "2020-10-20", 8.2e+22, 1.3e+10, None,
               'Xue et al. 2021, mT5: A Massively Multilingual Pre-trained Text-to-Text Transformer, NAACL'),
    FrontierLM('Switch', 'Google', "2021-01-11", 8.22e+22, 1.571e+12, None,
               'Fedus et al. 2021, Switch Transformers, arXiv:2101.03961'),
    FrontierLM('ByT5-XXL', 'Google, Google Research', "2021-05-28", 8.1e+22, 1.29e+10, None,
               'ByT5: Towards a token-free future with pre-trained byte-to-byte models, arXiv:2105.13626'),
    FrontierLM('Codex', 'OpenAI', "2021-07-07", 7.344e+22, 1.2e+10, None,
               'Evaluating Large Language Models Trained on Code, arXiv:2107.03374'),
    FrontierLM('Jurassic-1-Jumbo', 'AI21 Labs', "2021-08-11", 3.7e+23, 1.78e+11, 3e+11,
               'Lieber et al. 2021, Jurassic-1: Technical Details and Evaluation, AI21 Labs white paper'),
    FrontierLM('FLAN 137B', 'Google Research', "2021-09-03", 2.047e+24, 1.37e+11, None,
               'Finetuned Language Models Are Zero-Shot Learners, arXiv:2109.01652'),
    FrontierLM('HyperCLOVA 204B', 'NAVER', "2021-09-10", 2e+23, 2.04e+11, None,
               "AI Business 2021, South Korea's Naver unveils 'hyperscale AI' platform, aibusiness.com"),
    FrontierLM('Megatron-Turing NLG 530B', 'Microsoft, NVIDIA', "2021-10-11", 8.586e+23, 5.3e+11, 2.7e+11,
               'Smith et al. 2022, Using DeepSpeed and Megatron to Train Megatron-Turing NLG 530B, arXiv:2201.11990'),
    FrontierLM('Yuan 1.0', 'Inspur', "2021-10-12", 3.538e+23, 2.457e+11, None,
               'Wu et al. 2021, Yuan 1.0: Large-Scale Pre-trained Language Model, arXiv:2110.04725'),
    FrontierLM('Gopher (280B)', 'DeepMind', "2021-12-08", 6.31e+23, 2.8e+11, 3e+11,
               'Rae et al. 2021, Scaling Language Models: Insights from Training Gopher, arXiv:2112.11446'),
    FrontierLM('GLaM', 'Google', "2021-12-13", 3.636e+23, 1.2e+12, None,
               'GLaM: Efficient Scaling of Language Models with Mixture-of-Experts, arXiv:2112.06905'),
    FrontierLM('ERNIE 3.0 Titan', 'Baidu, Peng Cheng Laboratory', "2021-12-23", 1.042e+24, 2.6e+11, None,
               'Wang et al. 2021, ERNIE 3.0 Titan, arXiv:2112.12731'),
    FrontierLM('LaMDA', 'Google', "2022-02-10", 3.55e+23, 1.37e+11, None,
               'LaMDA: Language Models for Dialog Applications, arXiv:2201.08239'),
    FrontierLM('Chinchilla', 'DeepMind', "2022-03-29", 5.76e+23, 7e+10, 1.4e+12,
               'Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv:2203.15556'),
    FrontierLM('PaLM (540B)', 'Google Research', "2022-04-04", 2.527e+24, 5.404e+11, 7.8e+11,
               'Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways, arXiv:2204.02311'),
    FrontierLM('OPT-175B', 'Meta AI', "2022-05-02", 4.3e+23, 1.75e+11, None,
               'OPT: Open Pre-trained Transformer Language Models, arXiv:2205.01068'),
    FrontierLM('Minerva (540B)', 'Google', "2022-06-29", 2.742e+24, 5.404e+11, None,
               'Solving Quantitative Reasoning Problems with Language Models, arXiv:2206.14858'),
    FrontierLM('U-PaLM (540B)', 'Google', "2022-10-20", 2.53e+24, 5.4e+11, None,
               'Transcending Scaling Laws with 0.1% Extra Compute, arXiv:2210.11399'),
    FrontierLM('Flan-PaLM 540B', 'Google', "2022-10-20", 2.5e+24, 5.4e+11, None,
               'Scaling Instruction-Finetuned Language Models, arXiv:2210.11416'),
    FrontierLM('GPT-3.5', 'OpenAI', "2022-11-28", 2.578e+24, None, None,
               'platform.openai.com/docs/models/gpt-3-5'),
    FrontierLM('GPT-4', 'OpenAI', "2023-03-15", 2.1e+25, None, None,
               'GPT-4 Technical Report, arXiv:2303.08774'),
    FrontierLM('PaLM 2', 'Google', "2023-05-10", 7.34e+24, 3.4e+11, None,
               'PaLM 2 Technical Report, arXiv:2305.10403'),
    FrontierLM('Claude 2', 'Anthropic', "2023-07-11", 3.866e+24, None, None,
               'www.anthropic.com/index/claude-2'),
    FrontierLM('Falcon-180B', 'Technology Innovation Institute', "2023-09-06", 3.76e+24, 1.8e+11, 3.5e+12,
               'Almazrouei et al. 2023, The Falcon Series of Open Language Models, arXiv:2311.16867'),
    FrontierLM('Amazon Titan', 'Amazon', "2023-09-28", 4.8e+24, 2e+11, None,
               'aws.amazon.com/bedrock/titan'),
    FrontierLM('Grok-1', 'xAI', "2023-11-04", 2.9e+24, 3.14e+11, None,
               'Announcing Grok, x.ai/model-card'),
    FrontierLM('GPT-4 Turbo', 'OpenAI', "2023-11-06", 2.2e+25, None, None,
               'OpenAI 2023, New models and developer products announced at DevDay, openai.com/blog'),
    FrontierLM('Inflection-2', 'Inflection AI', "2023-11-22", 1.001e+25, None, None,
               'Inflection-2: The Next Step Up, inflection.ai/inflection-2'),
    FrontierLM('Gemini 1.0 Ultra', 'Google DeepMind', "2023-12-06", 5e+25, None, None,
               'Gemini Team 2023, Gemini: A Family of Highly Capable Multimodal Models, arXiv:2312.11805'),
    FrontierLM('Gemini 1.5 Pro', 'Google DeepMind', "2024-02-15", 1.58e+25, None, None,
               'Gemini Team 2024, Gemini 1.5: Unlocking multimodal understanding, arXiv:2403.05530'),
    FrontierLM('MegaScale (Production)', 'ByteDance, Peking University', "2024-02-23", 3.9e+24, 5.3e+11, None,
               'MegaScale: Scaling Large Language Model Training to More Than 10,000 GPUs, arXiv:2402.15627'),
    FrontierLM('Mistral Large', 'Mistral AI', "2024-02-26", 1.12e+25, None, None,
               'Mistral Large, our new flagship model, mistral.ai/news/mistral-large'),
    FrontierLM('Claude 3 Opus', 'Anthropic', "2024-03-04", 1.64e+25, None, None,
               'Anthropic 2024, The Claude 3 Model Family: Opus, Sonnet, Haiku (model card)'),
    FrontierLM('Aramco Metabrain AI', 'Saudi Aramco', "2024-03-04", 1.05e+25, 2.5e+11, None,
               'Offshore Technology 2024, Saudi Aramco unveils generative AI model, offshore-technology.com'),
    FrontierLM('GPT-4o', 'OpenAI', "2024-05-13", 3.81e+25, None, None,
               'Hello GPT-4o, openai.com/index/hello-gpt-4o'),
    FrontierLM('Nemotron-4 340B', 'NVIDIA', "2024-06-14", 1.8e+25, 3.4e+11, 9e+12,
               'NVIDIA 2024, Nemotron-4 340B Technical Report, arXiv:2406.11704'),
    FrontierLM('Claude 3.5 Sonnet', 'Anthropic', "2024-06-20", 2.7e+25, None, None,
               'Anthropic 2024, Claude 3.5 Sonnet (model card addendum)'),
    FrontierLM('Llama 3.1-405B', 'Meta AI', "2024-07-23", 3.8e+25, 4.05e+11, 1.56e+13,
               'Llama Team 2024, The Llama 3 Herd of Models, arXiv:2407.21783'),
    FrontierLM('Mistral Large 2', 'Mistral AI', "2024-07-24", 2.13e+25, 1.23e+11, None,
               'Mistral AI 2024, Mistral Large 2, mistral.ai/news/mistral-large-2407'),
    FrontierLM('Grok-2', 'xAI', "2024-08-13", 2.96e+25, None, None,
               'Grok-2 Beta Release, x.ai/blog/grok-2'),
    FrontierLM('GLM-4-Plus', 'Zhipu AI', "2024-08-29", 3.6e+25, None, None,
               'GLM-4-Plus, bigmodel.cn/dev/howuse/glm-4'),
    FrontierLM('Doubao-pro', 'ByteDance', "2024-10-28", 2.505e+25, 5e+11, None,
               'Doubao General Model Pro (Doubao-pro), www.volcengine.com/docs/6360/1264663'),
    FrontierLM('Grok-3', 'xAI', "2025-02-17", 4.64e+26, None, None,
               'Grok 3 Beta — The Age of Reasoning Agents, x.ai/blog/grok-3'),
    FrontierLM('Claude 3.7 Sonnet', 'Anthropic', "2025-02-24", 3.35e+25, None, None,
               'Claude 3.7 Sonnet, www.anthropic.com/news/claude-3-7-sonnet'),
    FrontierLM('GPT-4.5', 'OpenAI', "2025-02-27", 2.1e+26, None, None,
               'Introducing GPT-4.5, openai.com/index/introducing-gpt-4-5'),
    FrontierLM('Llama 4 Behemoth (preview)', 'Meta AI', "2025-04-05", 5.184e+25, 2e+12, None,
               'Meta AI 2025, The Llama 4 herd, ai.meta.com/blog/llama-4-multimodal-intelligence'),
)


def frontier_table(models: tuple[FrontierLM, ...] = FRONTIER_LMS) -> pd.DataFrame:
    """The built-in table as a frame shaped like `loaders.load_notable_models` output (plus tokens, citation)."""
    from analysis.trends.loaders import decimal_year

    frame = pd.DataFrame({
        "model": [m.name for m in models],
        "organization": [m.organization for m in models],
        "date": pd.to_datetime([m.date for m in models]),
        "params": [m.params for m in models],
        "tokens": [m.tokens for m in models],
        "compute": [m.compute for m in models],
        "citation": [m.citation for m in models],
    }).astype({"params": float, "tokens": float})
    frame["compute_source"] = EPOCH_COMPUTE_SOURCE
    frame["year"] = decimal_year(frame["date"])
    frame["frontier"] = True
    frame["notable"] = True
    frame["language"] = True
    return frame.sort_values("date").reset_index(drop=True)

