using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Conformance.Workers.TorchSharp.Models;

/// <summary>
/// The seed's LeNet, exactly as in the PyTorch tutorial "Saving and loading models".
/// Twin of python/torchconformance/models.py:TheModelClass; field names are the state_dict keys.
/// </summary>
public sealed class TheModelClass : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1 = Conv2d(3, 6, 5);
    private readonly MaxPool2d pool = MaxPool2d(2, 2);
    private readonly Conv2d conv2 = Conv2d(6, 16, 5);
    private readonly Linear fc1 = Linear(16 * 5 * 5, 120);
    private readonly Linear fc2 = Linear(120, 84);
    private readonly Linear fc3 = Linear(84, 10);

    public TheModelClass() : base(nameof(TheModelClass))
    {
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        x = pool.call(functional.relu(conv1.call(x)));
        x = pool.call(functional.relu(conv2.call(x)));
        x = x.view(-1, 16 * 5 * 5);
        x = functional.relu(fc1.call(x));
        x = functional.relu(fc2.call(x));
        x = fc3.call(x);
        return x;
    }
}
