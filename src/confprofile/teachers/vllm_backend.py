"""`vllm` teacher: an offline vLLM engine on local GPUs, with guided JSON decoding (optional extra).

Every reply is constrained to the answer JSON schema (`prompts.answer_schema`), so even a mid-size
model always emits a parseable answer with labels from the taxonomy. Requests go to the engine in
chunks of `chunk_size` (vLLM batches them internally); each chunk's replies are reported as soon as
it finishes, so an interrupted run keeps what was done. Prefix caching is on: every prompt of a
variant shares its system prompt.

params (all optional): top_p (1.0), seed (0: per-request seed = seed + hash(user, sample)),
chunk_size (512), and `engine`: a dict passed to `vllm.LLM` (tensor_parallel_size,
gpu_memory_utilization, max_model_len, dtype, ...).
"""

from __future__ import annotations

from typing import Any

from confprofile.errors import MissingExtraError
from confprofile.prompts import answer_schema
from confprofile.taxonomy import Taxonomy
from confprofile.teachers.base import TEACHERS, ReplyCallback, Teacher, TeacherConfig, TeacherReply, TeacherRequest
from confprofile.teachers.transformers_backend import derived_seed


def guided_json(schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keyword for JSON-schema decoding: `structured_outputs` (vLLM >= 0.12) or the
    older `guided_decoding`."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


@TEACHERS.register("vllm")
class VLLMTeacher(Teacher):
    def __init__(self, config: TeacherConfig, taxonomy: Taxonomy):
        super().__init__(config, taxonomy)
        try:
            import vllm  # noqa: F401  (fail early with a clear message)
        except ImportError:
            raise MissingExtraError("vllm", "vllm", "The vllm teacher backend") from None

        params = config.params
        self.top_p = float(params.get("top_p", 1.0))
        self.seed = int(params.get("seed", 0))
        self.chunk_size = int(params.get("chunk_size", 512))
        self.llm = None  # built on the first answer(): a Ray driver builds teachers only for cache keys
        self.guided = guided_json(answer_schema(taxonomy))

    def identity(self) -> dict[str, Any]:
        # engine settings change speed and memory, not answers (beyond dtype, kept in the key)
        dtype = self.config.params.get("engine", {}).get("dtype")
        return {**super().identity(), "params": {"top_p": self.top_p, "seed": self.seed, "dtype": dtype}}

    def _sampling(self, request: TeacherRequest):
        from vllm import SamplingParams

        return SamplingParams(
            temperature=self.config.temperature, top_p=self.top_p, max_tokens=self.config.max_new_tokens,
            seed=derived_seed(self.seed, request.user_id, request.sample) % 2**31, **self.guided,
        )

    def _engine(self):
        if self.llm is None:
            import vllm

            from confprofile.models import resolve_model_dir

            engine = {"enable_prefix_caching": True, **self.config.params.get("engine", {})}
            self.llm = vllm.LLM(model=str(resolve_model_dir(self.config.model)), **engine)
        return self.llm

    def answer(self, requests: list[TeacherRequest], on_reply: ReplyCallback) -> None:
        llm = self._engine()
        for start in range(0, len(requests), self.chunk_size):
            chunk = requests[start : start + self.chunk_size]
            try:
                outputs = llm.chat([list(r.messages) for r in chunk], [self._sampling(r) for r in chunk], use_tqdm=True)
                replies = [TeacherReply(text=out.outputs[0].text) for out in outputs]
            except Exception as exc:  # a failed chunk is recorded; the label stage retries it next run
                replies = [TeacherReply(text=None, error=f"{type(exc).__name__}: {exc}")] * len(chunk)
            for request, reply in zip(chunk, replies):
                on_reply(request, reply)

    def close(self) -> None:
        self.llm = None
