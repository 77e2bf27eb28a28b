pub(crate) fn render_workload(
    _app: &heimdall_model::Resource,
    _p: &crate::Platform,
    _o: &crate::RenderOptions,
) -> Result<crate::Rendered, Vec<heimdall_model::Problem>> {
    Err(vec![])
}
