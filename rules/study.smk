# Sec. 4.1 and App. B of the paper: PD matching of trigonometric polynomials with a k^2 lambda_k regularizer,
# comparing lambda_k profiles by the relative coefficient error. Independent of the dataset; CPU, about 30 s.


rule study_1d:
    output:
        table="results/study_1d/study_1d.csv",
        figure=report(
            "results/study_1d/study_1d.png",
            caption="../report/study_1d.rst",
            category="Section 4.1",
        ),
    log:
        "results/study_1d/study_1d.log",
    benchmark:
        "results/study_1d/study_1d.benchmark.tsv"
    conda:
        "../envs/plot.yaml"
    threads: 1
    params:
        settings=settings("study_1d"),
    script:
        "../workflow_scripts/study_1d.py"
