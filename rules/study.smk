# Sec. 4.1 and App. B of the paper: PD matching of trigonometric polynomials with a k^2 lambda_k regularizer,
# comparing lambda_k profiles by the relative coefficient error. It reads no shape; it lives in the run's folder so that
# runs of other configs (a preset, the tiny smoke test) do not overwrite each other's. CPU, about 30 s.


rule study_1d:
    output:
        table="results/{dataset}/study_1d/study_1d.csv",
        figure=report(
            "results/{dataset}/study_1d/study_1d.png",
            caption="../report/study_1d.rst",
            category="Section 4.1",
        ),
    log:
        "results/{dataset}/logs/study_1d.log",
    benchmark:
        "results/{dataset}/benchmarks/study_1d.tsv"
    conda:
        "../envs/plot.yaml"
    threads: 1
    params:
        settings=settings("study_1d"),
    script:
        "../workflow_scripts/study_1d.py"
