using TorchCheckpoints;

namespace Conformance.Workers.TorchSharp;

/// <summary>
/// torch.save(model) pickles the module's Python class; TorchSharp cannot rebuild Python classes.
/// The codec's allowlisted reader stops at the first class it is asked for, and that class is
/// named in the diagnosis, with what to save instead. Nothing in the file is executed.
/// </summary>
public static class PickledModels
{
    public static string Diagnose(string path)
    {
        try
        {
            TorchCheckpoint.Load(path);
        }
        catch (ForbiddenGlobalException e)
        {
            return $"the file is a pickled whole model (torch.save(model)) that needs the Python class {e.Global}, which TorchSharp cannot rebuild; "
                   + "save model.state_dict() instead (torch.save(model.state_dict(), path)), or a TorchScript module (torch.jit.save)";
        }
        return "the file holds no Python class: load it as a state dict (route pickle), not as a pickled whole model";
    }
}
