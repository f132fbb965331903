import torch

from sam3_edge.utils import masked_mean


def test_masked_mean_averages_only_valid_tokens_and_is_zero_without_any():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 5.0], [7.0, 7.0], [9.0, 9.0]]])
    valid = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_mean(tokens, valid)
    torch.testing.assert_close(out, torch.tensor([[2.0, 3.0], [0.0, 0.0]]))
    torch.testing.assert_close(masked_mean(tokens, valid.long()), out)  # 0/1 masks (attention_mask) too
